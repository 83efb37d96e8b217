"""CORS: pages served from the origins in `http.cors_origins` may call the API; no origin may by default.

Answered before routing, so a preflight needs no OPTIONS route of its own and an origin not
listed gets no CORS headers at all (the browser then refuses the page's request itself).
"""

from __future__ import annotations

from aiohttp import web

from .common import DAEMON, Handler

ALLOW_HEADERS = "Authorization, Content-Type, X-CSRF-Token, Idempotency-Key, Range"
EXPOSE_HEADERS = "Location, Content-Range, Content-Length, Content-Disposition, Retry-After"
METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    allowed = origin is not None and origin in request.app[DAEMON].settings.http.cors_origins
    if request.method == "OPTIONS" and origin and "Access-Control-Request-Method" in request.headers:
        if not allowed:
            return web.json_response({"error": f"Origin: {origin} is not in http.cors_origins", "field": "Origin"},
                                     status=403)
        return web.Response(status=204, headers={
            **_headers(origin), "Access-Control-Allow-Methods": METHODS,
            "Access-Control-Allow-Headers": ALLOW_HEADERS, "Access-Control-Max-Age": "600"})
    resp = await handler(request)
    if allowed and not resp.prepared:  # a WebSocket or a streamed file has sent its headers already
        resp.headers.update(_headers(origin))
    return resp


def _headers(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
            "Access-Control-Expose-Headers": EXPOSE_HEADERS, "Vary": "Origin"}
