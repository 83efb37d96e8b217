"""A finished video's companions: its thumbnail and its captions, for players and editors.

Behind the same access check as the MP4 itself; a video that has not finished, or whose
renderer made no such file, answers 409 or 404 with the reason.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ..models import JobState
from .common import Answer, ApiError, Endpoint, visible_job

CAPTIONS = {"srt": "application/x-subrip", "vtt": "text/vtt"}


async def thumbnail(request: web.Request) -> web.StreamResponse:
    return await _companion(request, "thumbnail", "thumbnail.jpg", "image/jpeg")


async def captions(request: web.Request) -> web.StreamResponse:
    kind = request.match_info["kind"]
    if kind not in CAPTIONS:
        raise ApiError(404, f"captions.{kind}: captions come as {' or '.join(CAPTIONS)}")
    return await _companion(request, kind, f"captions.{kind}", CAPTIONS[kind])


async def _companion(request: web.Request, key: str, name: str, media: str) -> web.StreamResponse:
    job = await visible_job(request)
    if job.status is not JobState.completed:
        raise ApiError(409, f"video {job.id} has no {name} yet ({job.status.value})")
    path = Path((job.result or {}).get(key) or "")
    if not path.is_file():
        raise ApiError(404, f"video {job.id} has no {name} (its renderer made none, or it was removed)")
    disposition = "inline" if key == "thumbnail" else f'attachment; filename="video-{job.id}.{key}"'
    return web.FileResponse(path, headers={"Content-Type": f"{media}; charset=utf-8" if key != "thumbnail"
                                           else media, "Content-Disposition": disposition,
                                           "Cache-Control": "private, max-age=3600"})


def endpoints() -> list[Endpoint]:
    refusals = {403: "another workspace's", 404: "unknown video, or no such file", 409: "not finished"}
    return [
        Endpoint("GET", "/videos/{id}/thumbnail.jpg", thumbnail, "A finished video's thumbnail",
                 responses={200: Answer("the image", media=("image/jpeg",)), **refusals}),
        Endpoint("GET", "/videos/{id}/captions.{kind}", captions, "A finished video's captions (srt or vtt)",
                 responses={200: Answer("the captions", media=tuple(CAPTIONS.values())), **refusals}),
    ]
