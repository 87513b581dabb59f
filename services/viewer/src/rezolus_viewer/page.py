r"""The page served at ``GET /``: ``static/index.html`` with its own styles and scripts inlined and the plan embedded.

Invariants:
- What the first chart needs arrives in the one response: the stylesheets
  and scripts that ``index.html`` names as plain ``<link rel="stylesheet">``
  / ``<script src>`` tags under ``/static/`` are inlined (they are small),
  and ``/api/info``'s answer for the request goes into the
  ``rezolus-info`` slot, so the page asks for its first charts without
  another round trip.  Any other tag (the vendored uPlot, loaded ``async``
  while the first answers are computed) stays a request to ``/static/``.
- ``index.html`` stays a working page on its own: served without the
  server's filling, it asks ``/static/`` and ``/api/info`` as before.
- Embedded JSON cannot end its ``<script>`` element: every ``<`` in it is
  written as ``\u003c``.
"""

from __future__ import annotations

import importlib.resources
import json
import pathlib
import re
from typing import Any

INFO_SLOT = "<!--rezolus-info-->"
_STYLE = re.compile(r'<link rel="stylesheet" href="/static/([\w./-]+\.css)">')
_SCRIPT = re.compile(r'<script src="/static/([\w./-]+\.js)"></script>')


def static_dir() -> pathlib.Path:
    """The package's static directory (page, script, styles, vendored libraries)."""
    return pathlib.Path(str(importlib.resources.files("rezolus_viewer") / "static"))


def build(static: pathlib.Path) -> str:
    """``index.html`` with its plain ``/static/`` stylesheets and scripts inlined."""
    html = (static / "index.html").read_text(encoding="utf-8")

    def inline(tag: str, match: re.Match[str]) -> str:
        text = (static / match.group(1)).read_text(encoding="utf-8")
        if f"</{tag}" in text.lower():
            return match.group(0)
        return f"<{tag}>\n{text}</{tag}>"

    html = _STYLE.sub(lambda m: inline("style", m), html)
    return _SCRIPT.sub(lambda m: inline("script", m), html)


def render(page: str, info: dict[str, Any] | None) -> str:
    """The page with ``info`` (``/api/info``'s answer) embedded, or the slot left empty."""
    embedded = "" if info is None else json.dumps(info).replace("<", "\\u003c")
    return page.replace(INFO_SLOT, embedded)
