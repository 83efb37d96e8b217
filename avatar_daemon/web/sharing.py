"""Share links over HTTP: made for a caller's finished video, played (and its still shown) without a token.

The signing rule is `share_links` (the core's: the webhook hands out the same links).
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from ..models import JobState
from ..share_links import ExpiredLink, InvalidLink, share_link, shared_video_id
from .common import Answer, ApiError, Endpoint, daemon_of, parse_body, visible_job
from .plays import counted
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


async def share(request: web.Request) -> web.Response:
    job = await visible_job(request)
    body = await parse_body(request, ShareBody) if await request.read() else ShareBody()
    if job.status is not JobState.completed or not (job.result or {}).get("video"):
        raise ApiError(409, f"video {job.id} has no file to share yet ({job.status.value})")
    d = daemon_of(request)
    expires = d.clock() + timedelta(hours=body.expires_in_hours)
    url = share_link(d.settings.data_dir, job.id, expires)
    await d.store.add_analytics(job.id, "share", "link")
    return web.json_response({"url": url, "page_url": f"{url}/page",
                              "expires_at": datetime.fromtimestamp(int(expires.timestamp()),
                                                                   expires.tzinfo).isoformat()}, status=201)


async def _shared_file(request: web.Request, key: str = "video") -> tuple[int, Path]:
    try:
        video_id = shared_video_id(request.app[KEYS], request.match_info["signed"], daemon_of(request).clock())
    except InvalidLink:
        raise ApiError(404, "this share link is not valid (mistyped, or not made here)") from None
    except ExpiredLink:
        raise ApiError(410, "this share link has expired; ask for a new one") from None
    job = await daemon_of(request).store.job(video_id)
    path = Path((job.result or {}).get(key) or "") if job else Path()
    if job is None or not path.is_file():
        raise ApiError(410, f"the shared {'video' if key == 'video' else key} is no longer here")
    return video_id, path


async def shared_video(request: web.Request) -> web.StreamResponse:
    video_id, path = await _shared_file(request)
    d = daemon_of(request)
    # one viewer: this link from this address (no account to tell people apart)
    event = counted(request, video_id, f"link:{request.match_info['signed']}:{request.remote}", d.clock(),
                    whole_get_is_download=False)
    if event:
        await d.store.add_analytics(video_id, event, "link")
    disposition = "attachment" if event == "download" or request.query.get("download") == "1" else "inline"
    return web.FileResponse(path, headers={"Content-Type": "video/mp4", "Cache-Control": "private, max-age=300",
                                           "Content-Disposition": f'{disposition}; filename="video-{video_id}.mp4"'})


async def shared_thumbnail(request: web.Request) -> web.StreamResponse:
    video_id, path = await _shared_file(request, "thumbnail")
    return web.FileResponse(path, headers={"Content-Type": "image/jpeg", "Cache-Control": "private, max-age=300",
                                           "Content-Disposition": f'inline; filename="video-{video_id}.jpg"'})


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
            f'<a href="{src}?download=1" download>Download</a></body></html>')
    return web.Response(text=page, content_type="text/html", headers={
        "Content-Security-Policy": "default-src 'none'; media-src 'self'; style-src 'unsafe-inline'"})


def endpoints() -> list[Endpoint]:
    return [
        Endpoint("POST", "/videos/{id}/share", share, "A signed link that plays the finished video without a "
                 "token until it expires", body=ShareBody,
                 responses={201: Answer("made", Shared), 403: "another workspace's", 409: "not finished"}),
        Endpoint("GET", "/shared/{signed}", shared_video, "A shared video's MP4 (Range supported); no token. "
                 "A play counts one view (its range requests are one play); ?download=1 counts a download",
                 auth=False, headers={"Range": {"type": "string", "description": "bytes=start-end"}},
                 query={"download": {"type": "string", "enum": ["1"],
                                     "description": "save it (attachment) and count a download, not a view"}},
                 responses={200: Answer("the file", media=("video/mp4",)),
                            206: Answer("part of the file", media=("video/mp4",)),
                            404: "not a valid link", 410: "expired, or the file is gone",
                            416: Answer("the Range is outside the file", media=())}),
        Endpoint("GET", "/shared/{signed}/thumbnail", shared_thumbnail, "A shared video's still (JPEG); no token",
                 auth=False, responses={200: Answer("the image", media=("image/jpeg",)), 404: "not a valid link",
                                        410: "expired, or the video has no still"}),
        Endpoint("GET", "/shared/{signed}/page", shared_page, "A minimal player page for a share link", auth=False,
                 responses={200: Answer("the page", media=("text/html",)), 404: "not a valid link",
                            410: "expired, or the file is gone"}),
    ]
