"""The daemon's aiohttp server: the JSON API behind bearer tokens, health, metrics and plugin routes."""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import logging
import weakref

from aiohttp import web

from ..errors import InvalidRequest
from ..store import describe
from . import (
    analytics, assets, campaign_reports, campaigns, catalogue, cors, docs, metrics, openapi, plays, publishing,
    research, sessions, sharing, status_ws, studio, videos,
)
from .common import CALLER, DAEMON, Answer, ApiError, Endpoint, Handler, Route, WebHost
from .replies import Health

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
# The core names a request's fields once for every interface; the API keeps the seed's names.
HTTP_FIELDS = {"script": "script_content", "title": "script_title", "avatar": "avatar_profile_id",
               "template": "template_id", "captions": "enable_captions"}


class HttpServer:
    name = "http"

    def __init__(self, host: WebHost, routes: list[Route], stopping: asyncio.Event, ready: asyncio.Event):
        self.host = host
        self.stopping, self.ready = stopping, ready
        self.port: int | None = None
        self.endpoints: list[Endpoint] = [
            Endpoint("GET", "/healthz", self.healthz, "Liveness and job counts", auth=False,
                     responses={200: Answer("OK", Health)}),
            Endpoint("GET", "/openapi.json", self.openapi, "This document", auth=False),
            *videos.endpoints(), *campaigns.endpoints(), *analytics.endpoints(), *status_ws.endpoints(),
            *metrics.endpoints(), *sessions.endpoints(), *docs.endpoints(),
            *assets.endpoints(), *sharing.endpoints(), *catalogue.endpoints(), *research.endpoints(),
            *campaign_reports.endpoints(), *publishing.endpoints(), *studio.endpoints(),
        ]
        self.app = web.Application(client_max_size=MAX_BODY, middlewares=[cors.cors, self._errors])
        self.app[DAEMON] = host
        sessions.install(self.app, host)
        plays.install(self.app)
        self.app[status_ws.SOCKETS] = weakref.WeakSet()
        self.app.on_shutdown.append(status_ws.close_all)
        for e in self.endpoints:
            handler = self._known_query(e)
            self.app.router.add_route(e.method, e.path, self._authenticated(handler) if e.auth else handler)
            if e.method == "GET" and 101 not in e.responses:  # HEAD: as GET, without the body (probes use it)
                self.app.router.add_route("HEAD", e.path, self._authenticated(handler) if e.auth else handler)
        for method, path, handler in routes:
            self.app.router.add_route(method, path, handler)
        try:
            version = importlib.metadata.version("avatar-daemon")
        except importlib.metadata.PackageNotFoundError:
            version = "0"
        self.document = openapi.document(self.endpoints, [(m, p) for m, p, _ in routes], version)

    # ---- cross-cutting --------------------------------------------------------------------

    def _authenticated(self, handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            request[CALLER] = sessions.authenticate(request)
            return await handler(request)

        return wrapped

    @staticmethod
    def _known_query(e: Endpoint) -> Handler:
        """Like a body's unknown field, an unknown query parameter is refused: `?limt=5` must not list fifty."""
        known = set(e.query)

        @functools.wraps(e.handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            unknown = sorted(set(request.query) - known)
            if unknown:
                raise ApiError(400, f"{unknown[0]}: not a query parameter of {e.method} {e.path} (known: "
                                    f"{', '.join(sorted(known)) or 'none'})", unknown[0])
            return await e.handler(request)

        return wrapped

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every refusal is JSON naming the thing and the reason; a bug is logged, not leaked."""
        try:
            return await handler(request)
        except InvalidRequest as exc:
            field = HTTP_FIELDS.get(exc.field, exc.field)
            return web.json_response({"error": f"{field}: {str(exc).split(': ', 1)[1]}", "field": field}, status=422)
        except ApiError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            body = {"error": exc.message, **({"field": exc.field} if exc.field else {})}
            return web.json_response(body, status=exc.status, headers=headers)
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": f"the body is over the {MAX_BODY // 1024} KB limit"}, status=413)
        except web.HTTPException as exc:
            if exc.status < 400 or request.path.startswith("/plugins/"):
                raise
            return web.json_response({"error": exc.reason}, status=exc.status, headers={
                k: v for k, v in exc.headers.items() if k.lower() == "allow"})
        except Exception:
            log.exception("http: %s %s failed", request.method, request.path)
            return web.json_response({"error": "internal error; the daemon's log has the details"}, status=500)

    # ---- small endpoints --------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        h = self.host
        return web.json_response({"ok": True, "jobs": await h.store.counts(), "inbox": h.inbox.stats.__dict__,
                                  "node": h.node_id, "database": describe(h.settings.database)})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(self.document)

    # ---- the service ---------------------------------------------------------------------------

    async def run(self) -> None:
        cfg = self.host.settings.http
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, cfg.host, cfg.port, backlog=1024)
            await site.start()
            # the port really bound (settings may say 0 for "any free port")
            self.port = site._server.sockets[0].getsockname()[1]
            log.info("http: listening on http://%s:%s", cfg.host, self.port)
            self.ready.set()
            await self.stopping.wait()
        finally:
            await runner.cleanup()

