"""Raw HTTP/1.1 requests for fuzzing the services in-process, over loopback only.

Invariants:
- Requests are written byte for byte on a fresh loopback connection (so odd
  paths, broken encodings and bad bodies reach the server as drawn), with
  ``Connection: close``; the answer is read to EOF under a deadline.
- ``Answer.body`` is everything after the final header block (interim 1xx
  answers skipped, chunked framing included), so a HEAD answer with any byte
  after its headers is caught.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import zlib
from dataclasses import dataclass
from urllib.parse import quote

from hypothesis import strategies as st

ANSWER_TIMEOUT_S = 30.0
METHODS = ("GET", "GET", "GET", "POST", "POST", "HEAD", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE")
ODD_PATHS = (
    "/",
    "//snapshot",
    "/snapshot/",
    "/../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/static/../api.py",
    "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%2f..%2fetc%2fpasswd",
    "/static/",
    "/static/index.html",
    "/api/chart/..",
    "/api/",
    "/%00",
    "/\u00e9",
    "*",
    "/" + "a" * 5000,
)
ODD_VALUES = (
    "",
    "%0A",
    "abc%0A",
    "..%2F..%2Fx",
    "1e400",
    "-1",
    "nan",
    "inf",
    "9" * 300,
    "%C3%A9",
    "%00",
    "%FF",
    "1700000000",
    "2026-11-25T09:00:00Z",
    "5m",
    "1s",
)
CONTENT_TYPES = (
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/form-data; boundary=zz",
    "multipart/form-data; boundary=",
    "text/plain",
    "application/octet-stream",
    "application/json; charset=latin-1",
    "garbage",
)
HEADER_CHOICES = {
    "Content-Encoding": ("gzip", "deflate", "br", "identity", "x-unknown", "gzip, gzip"),
    "Accept": ("application/openmetrics-text; version=1.0.0", "application/openmetrics-text; version=9", "*/*",
               "text/plain;version=0.0.4", "garbage;;q=x"),
    "Accept-Encoding": ("gzip", "gzip;q=0", "br", "*;q=abc", "identity"),
    "Authorization": ("Bearer nope", "Basic eDp5", "Bearer "),
    "Range": ("bytes=0-1", "bytes=-5", "bytes=x"),
    "Expect": ("100-continue",),
    "Cookie": ("a=b; c",),
}


@dataclass(frozen=True)
class Answer:
    """Status and what followed the header block."""

    status: int
    head: bytes
    body: bytes


def _body(kind: str, raw: bytes, pairs: list[tuple[str, str]]) -> bytes:
    form = "&".join(f"{k}={v}" for k, v in pairs).encode()
    document = json.dumps(dict(pairs)).encode()
    parts = b"".join(
        b'--zz\r\nContent-Disposition: form-data; name="' + k.encode() + b'"\r\n\r\n' + v.encode() + b"\r\n"
        for k, v in pairs
    )
    bodies = {
        "json": document,
        "form": form,
        "gzip-json": gzip.compress(document),
        "deflate-form": zlib.compress(form),
        "deep": b"[" * 30_000,
        "multipart": parts + b"--zz--\r\n",
    }
    return bodies.get(kind, raw)


@st.composite
def requests(draw: st.DrawFn, paths: tuple[str, ...], params: tuple[str, ...]) -> bytes:
    """One raw HTTP/1.1 request aimed at ``paths`` with parameters from ``params`` (and others)."""
    method = draw(st.sampled_from(METHODS))
    path = draw(
        st.one_of(
            st.sampled_from(paths),
            st.sampled_from(paths),
            st.sampled_from(ODD_PATHS),
            st.text("abcxyz/._-%09AZ", max_size=40).map(lambda t: "/" + t),
        )
    )
    key = st.one_of(st.sampled_from(params), st.text("abcdefghijklmnop_", min_size=1, max_size=8))
    value = st.one_of(st.sampled_from(ODD_VALUES), st.text(max_size=20).map(lambda t: quote(t, safe="")))
    pairs = draw(st.lists(st.tuples(key, value), max_size=4))
    query = "&".join(f"{k}={v}" for k, v in pairs)
    target = path + ("?" + query if query and "?" not in path else "")
    headers = {"Host": "127.0.0.1", "Connection": "close"}
    for name in draw(st.lists(st.sampled_from(sorted(HEADER_CHOICES)), max_size=3, unique=True)):
        headers[name] = draw(st.sampled_from(HEADER_CHOICES[name]))
    kind = draw(st.sampled_from(["none", "none", "raw", "json", "form", "gzip-json", "deflate-form", "deep",
                                 "multipart"]))
    body = b""
    if kind != "none":
        body = _body(kind, draw(st.binary(max_size=512)), draw(st.lists(st.tuples(key, value), max_size=3)))
        headers["Content-Type"] = draw(st.sampled_from(CONTENT_TYPES))
        headers["Content-Length"] = str(len(body))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("utf-8", "surrogateescape") + body


async def send(port: int, raw: bytes) -> Answer:
    """Write ``raw`` to 127.0.0.1:``port`` and read the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), ANSWER_TIMEOUT_S)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 1") and body.startswith(b"HTTP/"):  # interim 100 Continue
        head, _, body = body.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0
    return Answer(status, head, body)
