"""GET /docs: the API reference the seed promised at http://localhost:8008/docs, offline.

Swagger UI (swagger-ui-dist, vendored under swagger-ui/) reads /openapi.json from this
server; nothing comes from a CDN, and its validator badge (which calls swagger.io) is off.
The page's script is a file, not inline, so a strict Content-Security-Policy holds.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from .common import Answer, ApiError, Endpoint

ASSETS = Path(__file__).with_name("swagger-ui")
FILES = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript",
         "init.js": "text/javascript"}
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
          "connect-src 'self'; font-src 'self' data:; base-uri 'none'; frame-ancestors 'none'")

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>avatar-daemon API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"""

INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  persistAuthorization: false,
  tryItOutEnabled: false
});
"""


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html", headers={"Content-Security-Policy": POLICY})


async def docs_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in FILES:
        raise ApiError(404, f"no documentation file {name!r}")
    headers = {"Cache-Control": "public, max-age=86400", "Content-Type": FILES[name]}
    if name == "init.js":
        return web.Response(text=INIT, headers=headers)
    return web.FileResponse(ASSETS / name, headers=headers)


def endpoints() -> list[Endpoint]:
    return [
        Endpoint("GET", "/docs", docs_page, "This API's reference in the browser (Swagger UI, served offline)",
                 auth=False, responses={200: Answer("the page", media=("text/html",))}),
        Endpoint("GET", "/docs/{name}", docs_asset, "The reference page's script and style sheet", auth=False,
                 responses={200: Answer("the file", media=("text/css", "text/javascript")),
                            404: "not one of its files"}),
    ]
