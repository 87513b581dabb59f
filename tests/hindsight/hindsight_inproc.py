"""An in-process hindsight (service, buffer and aiohttp app, no bus) for HTTP tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hindsight_synth import T0, Feeder, S

from rezolus_hindsight import config as hs_config
from rezolus_hindsight.http import make_app
from rezolus_hindsight.service import HindsightService

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp import web


def service(tmp_path: Path, rows: int = 20, token: str | None = None) -> HindsightService:
    """A service whose buffer holds ``rows`` one-second frames, as if ingested from the bus."""
    cfg = hs_config.load(
        None,
        {
            "directory": str(tmp_path / "data"),
            "output": str(tmp_path / "out"),
            "interval": "1s",
            "duration": "60s",
            "max_bytes": "64MiB",
            "listen": "127.0.0.1:4243",
        },
    )
    if token is not None:
        cfg = type(cfg)(**{**cfg.__dict__, "token": token})
    svc = HindsightService(cfg)
    svc.buffer.open()
    svc._prepare_output()
    feeder = Feeder(svc.buffer)
    for i in range(rows):
        feeder.feed(T0 + i * S)
    return svc


def app(svc: HindsightService) -> web.Application:
    """The HTTP application of ``svc``."""
    return make_app(svc)
