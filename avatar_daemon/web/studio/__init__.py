"""The web studio: plain HTML, CSS and JavaScript served at `/`, with no build step and no CDN.

The page is a client of the public API like any other (a session cookie from POST /session,
CSRF header on changes), so it can do nothing a token holder could not do with curl.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ..common import Answer, ApiError, Endpoint

STATIC = Path(__file__).parent / "static"
TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
# Everything the page loads comes from this server; media may also be a blob the page made.
POLICY = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
          "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
          "form-action 'self'")
HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "same-origin", "Cache-Control": "no-cache"}


def _file(name: str) -> web.FileResponse:
    path = STATIC / name
    # Only the files shipped beside this module, by their plain names: no folders, no dot files.
    if "/" in name or "\\" in name or name.startswith(".") or path.suffix not in TYPES or not path.is_file():
        raise ApiError(404, f"no studio file {name!r}")
    return web.FileResponse(path, headers={**HEADERS, "Content-Type": f"{TYPES[path.suffix]}; charset=utf-8"})


async def page(request: web.Request) -> web.StreamResponse:
    return _file("index.html")


async def asset(request: web.Request) -> web.StreamResponse:
    return _file(request.match_info["name"])


def endpoints() -> list[Endpoint]:
    return [
        Endpoint("GET", "/", page, "The web studio (sign in with an API token)", auth=False,
                 responses={200: Answer("the page", media=("text/html",))}),
        Endpoint("GET", "/studio/{name}", asset, "The studio's scripts, styles and icons", auth=False,
                 responses={200: Answer("the file", media=("text/css", "text/javascript", "image/svg+xml")),
                            404: "no such file"}),
    ]
