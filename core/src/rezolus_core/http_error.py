"""One line for a refused HTTP request to a rezolus service (stdlib only: clients import it before anything heavy).

Every service's HTTP API refuses with a JSON body ``{"error": "..."}``; the
line is ``HTTP <code>: <that text>``, or the status reason when the body is
not such JSON.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import urllib.error


def http_error(exc: urllib.error.HTTPError) -> str:
    """``HTTP <code>: <the service's error text>`` for a refused request."""
    try:
        body: Any = json.loads(exc.read() or b"{}")
    except ValueError:
        body = {}
    detail = body.get("error") if isinstance(body, dict) else None
    return f"HTTP {exc.code}: {detail or exc.reason}"
