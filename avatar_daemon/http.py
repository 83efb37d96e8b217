"""The daemon's aiohttp server: health, and the routes plugins register."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .daemon import Daemon

log = logging.getLogger(__name__)


class HttpServer:
    name = "http"

    def __init__(self, daemon: "Daemon"):
        self.daemon = daemon
        self.app = web.Application(client_max_size=1024 * 1024)
        self.app.router.add_get("/healthz", self.healthz)
        for method, path, handler in daemon.routes:
            self.app.router.add_route(method, path, handler)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "jobs": await self.daemon.store.counts(),
                                  "inbox": self.daemon.inbox.stats.__dict__})

    async def run(self, daemon: "Daemon" | None = None) -> None:
        cfg = self.daemon.settings.http
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, cfg.host, cfg.port)
            await site.start()
            # the port really bound (settings may say 0 for "any free port")
            self.daemon.http_port = site._server.sockets[0].getsockname()[1]
            log.info("http: listening on http://%s:%s", cfg.host, self.daemon.http_port)
            self.daemon.http_ready.set()
            await self.daemon.stopping.wait()
        finally:
            await runner.cleanup()
