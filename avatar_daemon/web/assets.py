"""POST /assets and GET /assets: uploads a request can then name by id (background, narration, photo)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..media import Refused
from .common import Answer, ApiError, Endpoint, caller, daemon_of
from .replies import AssetList, AssetReply

FIELD = "file"
MALFORMED = (HttpProcessingError, ValueError, AssertionError, LookupError)  # what aiohttp's reader raises on junk


async def upload(request: web.Request) -> web.Response:
    if not request.content_type.startswith("multipart/form-data"):
        raise ApiError(415, f"{FIELD}: send the file as multipart/form-data in a field named {FIELD!r}", FIELD)
    d = daemon_of(request)
    who = caller(request)
    uploads = d.media.uploads
    try:
        reader = await request.multipart()
        part = await reader.next()
        while part is not None and getattr(part, "name", None) != FIELD:
            await part.release()
            part = await reader.next()
    except MALFORMED:
        raise ApiError(400, "the body is not valid multipart/form-data") from None
    if part is None or not hasattr(part, "read_chunk"):
        raise ApiError(422, f"{FIELD}: no part named {FIELD!r} in the form", FIELD)

    async def chunks():
        try:
            while chunk := await part.read_chunk(64 * 1024):
                yield chunk
        except MALFORMED:
            raise ApiError(400, "the body is not valid multipart/form-data") from None

    into = uploads.part_file()
    try:
        sha256, size = await uploads.receive(chunks(), into)
        asset = await uploads.add(into, sha256, size, workspace=who.workspace, user=who.user,
                                  filename=part.filename or "upload", now=d.clock().isoformat())
    except Refused as exc:
        status = 413 if "limit" in str(exc) else 422
        raise ApiError(status, f"{FIELD}: {exc}", FIELD) from None
    finally:
        into.unlink(missing_ok=True)
    return web.json_response(asset.public(), status=201, headers={"Location": f"/assets/{asset.asset_id}"})


async def list_assets(request: web.Request) -> web.Response:
    who = caller(request)
    rows = daemon_of(request).media.uploads.listed(who.workspace, everyone=who.admin)
    return web.json_response({"assets": [a.public() for a in rows]})


def endpoints() -> list[Endpoint]:
    return [
        Endpoint("POST", "/assets", upload, "Upload an image, video or audio file (multipart/form-data, field "
                 "`file`); its bytes are probed, and requests name it by asset_id (`background.asset_id`, "
                 "`narration_asset_id`, `photo_asset_id`) within the uploader's workspace",
                 upload=FIELD, responses={201: Answer("stored", AssetReply), 413: "over media.max_bytes",
                            415: "not multipart/form-data", 422: "no file field, or bytes that are no media"}),
        Endpoint("GET", "/assets", list_assets, "The caller's workspace's uploads, newest first",
                 responses={200: Answer("OK", AssetList)}),
    ]
