"""A WebSocket per video: its state at once, then every change until the job ends.

With `?publications=1` it stays open after the end and also carries the video's posts:
`{"type": "publications", "publications": [...]}` at once, then `{"type": "publication",
"publication": {...}}` per change (queued, each stage, progress, published with its url,
failed with the platform's reason). Without it, publication events are not sent: they would
read as the video completing again.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any

from aiohttp import WSMsgType, web

from ..models import JobEvent
from .common import Endpoint, daemon_of, video_json, visible_job

SOCKETS = web.AppKey("status_sockets", weakref.WeakSet)


def _message(event: JobEvent, download: str | None) -> dict[str, Any]:
    error = event.message if event.state.value in ("failed", "timeout", "cancelled") else None
    return {"id": event.job_id, "video_id": event.job_id, "status": event.state.value, "percent": event.percent,
            "message": event.message, "video_url": download if event.state.value == "completed" else None,
            "error": error, "error_message": error}  # error_message: what the seed's page reads


async def status_ws(request: web.Request) -> web.StreamResponse:
    job = await visible_job(request)  # refusals are plain HTTP, before the upgrade
    d = daemon_of(request)
    posts = request.query.get("publications") == "1"
    # A browser sends its token as the subprotocol pair `bearer, <token>`; answering `bearer` completes it.
    ws = web.WebSocketResponse(heartbeat=30, protocols=("bearer",))
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    async with d.bus.watch(job.id) as events:  # subscribe first, then read: no change falls in between
        job = await d.store.job(job.id)
        current = video_json(job)
        await ws.send_json({"id": job.id, "video_id": job.id, "status": job.status.value, "percent": job.percent,
                            "message": "", "video_url": current["download_url"] or current["video_url"],
                            "error": job.error, "error_message": job.error})
        if posts:
            await ws.send_json({"type": "publications", "video_id": job.id,
                                "publications": await d.publishing.for_video(job.id)})
        reader = asyncio.ensure_future(_until_closed(ws))
        try:
            while (posts or not job.status.final) and not reader.done():
                getter = asyncio.ensure_future(events.get())
                await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    break
                event = getter.result()
                if event.publication is not None:
                    if posts:
                        await ws.send_json({"type": "publication", "video_id": job.id,
                                            "publication": event.publication})
                    continue
                await ws.send_json(_message(event, f"/videos/{job.id}/download"))
                if event.state.final and not posts:
                    break
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    await ws.close()
    return ws


async def _until_closed(ws: web.WebSocketResponse) -> None:
    async for msg in ws:  # clients say nothing; we only notice them leave
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            return


async def close_all(app: web.Application) -> None:
    for ws in list(app[SOCKETS]):
        await ws.close(code=1001, message=b"server shutting down")


def endpoints() -> list[Endpoint]:
    return [Endpoint("GET", "/videos/{id}/status-ws", status_ws,
                     "WebSocket: the video's state now, then every change until it ends. Browsers, which "
                     "cannot set headers on one, send `?ticket=` (POST /ws-tickets) or the subprotocols "
                     "`bearer, <token>`",
                     query={"ticket": {"type": "string", "description": "a single-use ticket from POST /ws-tickets"},
                            "publications": {"type": "string", "enum": ["1"],
                                             "description": "stay open after the end, with the video's posts"}},
                     responses={101: "switching to WebSocket", 400: "not a WebSocket handshake",
                                403: "not yours", 404: "unknown"})]
