"""One research job in full: its insights with their scores and the script written from it.

The studio shows the script before a video is made of it, so the person can read and edit it.
Visible like the list: shared research (inbox, campaigns) to everyone, a workspace's to its own.
"""

from __future__ import annotations

from aiohttp import web

from .bodies import MAX_ID
from .common import ApiError, Endpoint, caller, daemon_of


async def get_research(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    research_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 19 else 0
    if not 1 <= research_id <= MAX_ID:
        raise ApiError(404, f"no research job {raw!r}")
    row = await daemon_of(request).store.research_job(research_id)
    if row is None:
        raise ApiError(404, f"no research job {research_id}")
    who = caller(request)
    if not who.admin and row.workspace_id not in (None, who.workspace):
        raise ApiError(403, f"research job {research_id} belongs to another workspace")
    return web.json_response({
        "id": row.id, "source": row.source, "title": row.title, "topic": row.topic, "created_at": row.created_at,
        "insights": [{"text": i.text, "score": i.score, "url": i.url} for i in row.research.insights],
        "script": {"title": row.script.title, "text": row.script.text,
                   "estimated_seconds": row.script.estimated_seconds,
                   "description": row.script.description, "hashtags": row.script.hashtags}})


def endpoints() -> list[Endpoint]:
    return [Endpoint("GET", "/research/{id}", get_research, "One research job: its insights and its script",
                     responses={200: "OK", 403: "another workspace's", 404: "unknown"})]
