"""An empty in-process hindsight service (no bus) on a fresh directory, for tests that feed its buffer themselves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rezolus_hindsight import config as hs_config
from rezolus_hindsight.service import HindsightService

if TYPE_CHECKING:
    from pathlib import Path


def empty_service(root: Path, token: str | None = None) -> HindsightService:
    """A service keeping 60 s of 1 s frames under ``root`` (data/, out/), its buffer open and empty."""
    cfg = hs_config.load(
        None,
        {
            "directory": str(root / "data"),
            "output": str(root / "out"),
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
    return svc
