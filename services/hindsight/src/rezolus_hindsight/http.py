"""Hindsight's HTTP API (aiohttp): POST/GET /snapshot and GET /status.

Invariants:
- Every error is JSON ``{"error": message, "status": code}`` with a 4xx/5xx
  status; no request can produce a stack trace in a reply.
- Snapshot parameters come from the query string and, for POST, from a form
  or JSON body; unknown or repeated parameters are refused.
- When a token is configured, both snapshot endpoints require
  ``Authorization: Bearer <token>`` (compared in constant time); /status
  stays open, it reveals no metric values.
- ``GET /snapshot`` builds the parquet in a private temporary directory,
  streams it and deletes it; nothing lands in the output directory.
  ``HEAD /snapshot`` checks the request (token, parameters, range) and
  answers the same status with headers only: it builds nothing.
- A body the client got wrong (bad JSON, however deeply nested; a multipart
  body without a usable boundary; a ``Content-Encoding`` it does not hold)
  is a 400, never a 500.
"""

from __future__ import annotations

import hmac
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from rezolus_core import log
from rezolus_core.web import Served
from rezolus_core.web import start as web_start
from rezolus_hindsight import request
from rezolus_hindsight.request import RequestError
from rezolus_hindsight.service import HindsightService, describe

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from rezolus_core.address import ListenAddress

PARQUET_TYPE = "application/vnd.apache.parquet"
MAX_VALUE_CHARS = 256
_SERVICE = web.AppKey("service", HindsightService)
_CHUNK = 1 << 20


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status)


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    req = request
    try:
        return await handler(req)
    except RequestError as exc:
        return _error(exc.status, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, f"{exc.reason}: {req.method} {req.path}")
    except Exception:  # noqa: BLE001 - the API's last line: log it, answer JSON, keep serving
        log.get().exception("request failed", method=req.method, path=req.path)
        return _error(500, "internal error; see the hindsight log")


def _service(req: web.Request) -> HindsightService:
    return req.app[_SERVICE]


def _authorize(req: web.Request) -> None:
    token = _service(req).config.token
    if token is None:
        return
    given = req.headers.get("Authorization", "").encode()
    if not hmac.compare_digest(given, f"Bearer {token}".encode()):
        raise RequestError("this endpoint needs 'Authorization: Bearer <token>'", status=401)


async def _body_pairs(req: web.Request) -> list[tuple[str, Any]]:
    try:
        return await _read_body(req)
    except (HttpProcessingError, web.RequestPayloadError, RecursionError) as exc:
        raise RequestError(f"cannot read the request body: {type(exc).__name__}") from exc
    except ValueError as exc:
        if isinstance(exc, RequestError):
            raise
        raise RequestError(f"cannot read the request body: {str(exc)[:120]}") from exc


async def _read_body(req: web.Request) -> list[tuple[str, Any]]:
    if not req.body_exists:
        return []
    if req.content_type == "application/json":
        try:
            body = await req.json()
        except ValueError as exc:
            raise RequestError(f"body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise RequestError("JSON body must be an object")
        return list(body.items())
    if req.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return list((await req.post()).items())
    if await req.read():
        raise RequestError(f"unsupported body type {req.content_type!r}", status=415)
    return []


async def _params(req: web.Request) -> dict[str, str]:
    pairs: list[tuple[str, Any]] = list(req.query.items())
    if req.method == "POST":
        pairs += await _body_pairs(req)
    params: dict[str, str] = {}
    for key, value in pairs:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise RequestError(f"parameter {key!r} must be a string or a number")
        text = str(value)
        if len(text) > MAX_VALUE_CHARS:
            raise RequestError(f"parameter {key!r} is longer than {MAX_VALUE_CHARS} characters")
        if key in params:
            raise RequestError(f"parameter {key!r} is given twice")
        params[key] = text
    return params


async def post_snapshot(req: web.Request) -> web.StreamResponse:
    """Write a snapshot into the output directory and describe it."""
    _authorize(req)
    result = await _service(req).snapshot(await _params(req))
    return web.json_response(describe(result))


async def get_snapshot(req: web.Request) -> web.StreamResponse:
    """Build a snapshot and stream it as a parquet download."""
    _authorize(req)
    params = await _params(req)
    name = params.pop("name", None)
    file_name = request.check_name(name) if name is not None else None
    scratch = Path(tempfile.mkdtemp(prefix="rezolus-hindsight-"))
    try:
        result = await _service(req).snapshot(params, path=scratch / "snapshot.parquet")
        download = file_name or request.default_name(request.Range(result.start_ns, result.end_ns))
        response = web.StreamResponse(
            headers={
                "Content-Type": PARQUET_TYPE,
                "Content-Disposition": f'attachment; filename="{download}"',
                "X-Rows": str(result.rows),
                "X-Start": request.format_ns(result.start_ns),
                "X-End": request.format_ns(result.end_ns),
            }
        )
        response.content_length = result.bytes
        await response.prepare(req)
        with result.path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


async def head_snapshot(req: web.Request) -> web.StreamResponse:
    """Answer what GET would (status and headers) without building the snapshot."""
    _authorize(req)
    params = await _params(req)
    name = params.pop("name", None)
    file_name = request.check_name(name) if name is not None else None
    wanted = request.resolve(params, _service(req).retained())
    download = file_name or request.default_name(wanted)
    return web.Response(
        headers={
            "Content-Type": PARQUET_TYPE,
            "Content-Disposition": f'attachment; filename="{download}"',
            "X-Start": request.format_ns(wanted.start_ns),
            "X-End": request.format_ns(wanted.end_ns),
        }
    )


async def get_status(req: web.Request) -> web.StreamResponse:
    """Report the buffer's and the service's state."""
    return web.json_response(_service(req).status())


def make_app(service: HindsightService) -> web.Application:
    """Build the aiohttp application serving ``service``."""
    app = web.Application(middlewares=[_errors], client_max_size=64 * 1024)
    app[_SERVICE] = service
    app.router.add_post("/snapshot", post_snapshot)
    app.router.add_get("/snapshot", get_snapshot, allow_head=False)
    app.router.add_route("HEAD", "/snapshot", head_snapshot)
    app.router.add_get("/status", get_status)
    return app


async def start(service: HindsightService, listen: ListenAddress) -> Served:
    """Serve the API on ``listen``; StartupError when the address is unusable."""
    return await web_start(make_app(service), listen)
