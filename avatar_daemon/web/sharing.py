"""Share links: a signed, expiring URL that plays one finished video without a token.

The link carries the video's id and its expiry, signed with the session key: nothing is
stored, a forged or stretched link fails the signature, and a link stops working at its
expiry on every daemon that shares the key.
"""

from __future__ import annotations

import hmac
import html
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from ..models import JobState
from .common import Answer, ApiError, Endpoint, daemon_of, parse_body, visible_job
from .replies import Reply
from .sessions import KEYS

DEFAULT_HOURS = 72


class ShareBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in_hours: float = Field(DEFAULT_HOURS, gt=0, le=24 * 30, description="how long the link plays")


class Shared(Reply):
    url: str = Field(description="a path on this server; plays without a token until expires_at")
    page_url: str = Field(description="a minimal player page for the same link")
    expires_at: str


def _signature(request: web.Request, video_id: int, until: int) -> str:
    return request.app[KEYS].sign(f"share:{video_id}.{until}")[:32]


async def share(request: web.Request) -> web.Response:
    job = await visible_job(request)
    body = await parse_body(request, ShareBody) if await request.read() else ShareBody()
    if job.status is not JobState.completed or not (job.result or {}).get("video"):
        raise ApiError(409, f"video {job.id} has no file to share yet ({job.status.value})")
    d = daemon_of(request)
    expires = d.clock() + timedelta(hours=body.expires_in_hours)
    until = int(expires.timestamp())
    signed = f"{job.id}.{until}.{_signature(request, job.id, until)}"
    await d.store.add_analytics(job.id, "share", "link")
    return web.json_response({"url": f"/shared/{signed}", "page_url": f"/shared/{signed}/page",
                              "expires_at": datetime.fromtimestamp(until, expires.tzinfo).isoformat()}, status=201)


async def _shared_file(request: web.Request) -> tuple[int, Path]:
    raw = request.match_info["signed"]
    parts = raw.split(".")
    refusal = ApiError(404, "this share link is not valid (mistyped, or not made here)")
    if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()) or len(parts[0]) > 19:
        raise refusal
    video_id, until = int(parts[0]), int(parts[1])
    if not hmac.compare_digest(_signature(request, video_id, until), parts[2]):
        raise refusal
    if until <= daemon_of(request).clock().timestamp():
        raise ApiError(410, "this share link has expired; ask for a new one")
    job = await daemon_of(request).store.job(video_id)
    path = Path((job.result or {}).get("video") or "") if job else Path()
    if job is None or not path.is_file():
        raise ApiError(410, "the shared video is no longer here")
    return video_id, path


async def shared_video(request: web.Request) -> web.StreamResponse:
    video_id, path = await _shared_file(request)
    try:
        resumed = bool(request.http_range.start)
    except ValueError:
        resumed = True
    if not resumed:
        await daemon_of(request).store.add_analytics(video_id, "view", "link")
    return web.FileResponse(path, headers={"Content-Type": "video/mp4", "Cache-Control": "private, max-age=300",
                                           "Content-Disposition": f'inline; filename="video-{video_id}.mp4"'})


async def shared_page(request: web.Request) -> web.Response:
    video_id, _ = await _shared_file(request)
    job = await daemon_of(request).store.job(video_id)
    src = html.escape(f"/shared/{request.match_info['signed']}", quote=True)
    title = html.escape(job.title if job else f"video {video_id}")
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>'
            '<style>body{margin:0;background:#0f172a;color:#f8fafc;font:16px system-ui,sans-serif;display:flex;'
            'flex-direction:column;align-items:center;gap:12px;padding:16px}video{max-width:100%;max-height:80vh}'
            'a{color:#facc15}</style></head>'
            f'<body><h1>{title}</h1><video controls playsinline preload="metadata" src="{src}"></video>'
            f'<a href="{src}" download>Download</a></body></html>')
    return web.Response(text=page, content_type="text/html", headers={
        "Content-Security-Policy": "default-src 'none'; media-src 'self'; style-src 'unsafe-inline'"})


def endpoints() -> list[Endpoint]:
    return [
        Endpoint("POST", "/videos/{id}/share", share, "A signed link that plays the finished video without a "
                 "token until it expires", body=ShareBody,
                 responses={201: Answer("made", Shared), 403: "another workspace's", 409: "not finished"}),
        Endpoint("GET", "/shared/{signed}", shared_video, "A shared video's MP4 (Range supported); no token",
                 auth=False, headers={"Range": {"type": "string", "description": "bytes=start-end"}},
                 responses={200: Answer("the file", media=("video/mp4",)),
                            206: Answer("part of the file", media=("video/mp4",)),
                            404: "not a valid link", 410: "expired, or the file is gone",
                            416: Answer("the Range is outside the file", media=())}),
        Endpoint("GET", "/shared/{signed}/page", shared_page, "A minimal player page for a share link", auth=False,
                 responses={200: Answer("the page", media=("text/html",)), 404: "not a valid link",
                            410: "expired, or the file is gone"}),
    ]
