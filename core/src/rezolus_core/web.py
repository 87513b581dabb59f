"""HTTP start-up shared by the services that serve HTTP (exporter, hindsight, viewer).

Invariants:
- ``start`` either returns a running site with the address it really bound
  (the chosen port when asked for port 0) or raises ``StartupError`` with one
  line ``cannot listen on HOST:PORT: reason``, leaving nothing half open.
- aiohttp never installs its own signal handlers or access log: the
  lifecycle owns signals, the service owns its logs.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from rezolus_core.address import ListenAddress
from rezolus_core.lifecycle import StartupError


@dataclass
class Served:
    """A running HTTP server and the address it listens on."""

    runner: web.AppRunner
    listen: ListenAddress

    @property
    def url(self) -> str:
        """``http://HOST:PORT/`` of the bound address."""
        return f"http://{self.listen}/"

    async def close(self) -> None:
        """Stop serving."""
        await self.runner.cleanup()


async def start(app: web.Application, listen: ListenAddress) -> Served:
    """Serve ``app`` on ``listen``; StartupError when the address cannot be bound."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, listen.host, listen.port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise StartupError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    port = listen.port
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            port = int(address[1])
            break
    return Served(runner, ListenAddress(listen.host, port))
