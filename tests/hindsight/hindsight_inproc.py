"""An in-process hindsight (service, buffer and aiohttp app, no bus) for HTTP tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hindsight_synth import T0, Feeder, S

from rezolus_hindsight.http import make_app
from support.hindsight_service import empty_service

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp import web

    from rezolus_hindsight.service import HindsightService


def service(tmp_path: Path, rows: int = 20, token: str | None = None) -> HindsightService:
    """A service whose buffer holds ``rows`` one-second frames, as if ingested from the bus."""
    svc = empty_service(tmp_path, token)
    feeder = Feeder(svc.buffer)
    for i in range(rows):
        feeder.feed(T0 + i * S)
    return svc


def app(svc: HindsightService) -> web.Application:
    """The HTTP application of ``svc``."""
    return make_app(svc)
