"""Where a recording comes from: a local file, or a hindsight snapshot URL downloaded to a temporary file.

Invariants:
- A bare hindsight base URL gets ``/snapshot`` appended; any other URL
  (with its query such as ``?last=5m``) is kept as given.
- ``Authorization: Bearer`` comes from ``--token-file`` or
  ``$REZOLUS_HINDSIGHT_TOKEN`` when given.
- A failed download leaves no temporary file behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.parse
from pathlib import Path

from rezolus_core.config import ConfigError
from rezolus_core.http_error import http_error

DOWNLOAD_TIMEOUT_S = 120.0
TOKEN_ENV = "REZOLUS_HINDSIGHT_TOKEN"  # noqa: S105 - the name of a variable, not a secret


def is_url(source: str) -> bool:
    """Whether ``source`` names a snapshot URL rather than a file."""
    return source.startswith(("http://", "https://"))


def token(token_file: str | None) -> str | None:
    """The bearer token from ``token_file`` or the environment (ConfigError if the file is unreadable)."""
    try:
        value = Path(token_file).read_text(encoding="utf-8").strip() if token_file else os.environ.get(TOKEN_ENV)
    except OSError as exc:
        raise ConfigError("command line", "--token-file", f"cannot read {token_file}: {exc.strerror}") from None
    return value or None


def snapshot_url(url: str) -> str:
    """The snapshot URL: hindsight's base URL gets ``/snapshot`` appended, anything else is kept."""
    parts = urllib.parse.urlsplit(url)
    if parts.path in {"", "/"}:
        parts = parts._replace(path="/snapshot")
    return urllib.parse.urlunsplit(parts)



def download(url: str, token: str | None = None, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Fetch ``url`` into a temporary parquet file and return its path (DownloadError says why not)."""
    import urllib.error  # noqa: PLC0415 - http.client and email load only when a URL is viewed
    import urllib.request  # noqa: PLC0415

    req = urllib.request.Request(url, method="GET")  # noqa: S310 - the caller checked the scheme
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    fd, name = tempfile.mkstemp(prefix="rezolus-snapshot-", suffix=".parquet")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout_s) as response:  # noqa: S310 - the caller checked the scheme
            shutil.copyfileobj(response, out, 1 << 20)
    except urllib.error.HTTPError as exc:
        path.unlink(missing_ok=True)
        raise DownloadError(http_error(exc)) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        path.unlink(missing_ok=True)
        raise DownloadError(str(getattr(exc, "reason", None) or exc)) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


class DownloadError(RuntimeError):
    """A snapshot could not be downloaded; the message says why."""
