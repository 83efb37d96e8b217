"""Views, downloads and shares per platform: recorded by callers, summed per video, campaign, platform, day."""

from __future__ import annotations

from aiohttp import web

from .bodies import AnalyticsEventBody
from .replies import Analytics, AnalyticsEvent, VideoAnalytics
from .common import Answer, Endpoint, caller, daemon_of, parse_body, visible_job


async def record_event(request: web.Request) -> web.Response:
    job = await visible_job(request)
    body = await parse_body(request, AnalyticsEventBody)
    await daemon_of(request).store.add_analytics(job.id, body.event, body.platform)
    return web.json_response({"video_id": job.id, "event": body.event, "event_type": body.event,
                              "platform": body.platform}, status=201)


async def video_analytics(request: web.Request) -> web.Response:
    job = await visible_job(request)
    totals = await daemon_of(request).store.analytics(None, job.id)
    return web.json_response({"video_id": job.id, **_sums(totals), "by_platform": totals["by_platform"],
                              "by_day": totals["by_day"]})


async def all_analytics(request: web.Request) -> web.Response:
    totals = await daemon_of(request).store.analytics(caller(request).owner_filter())
    return web.json_response({**_sums(totals), **totals})


def _sums(totals: dict[str, list[dict]]) -> dict[str, int]:
    """The seed's `analytics['views']` and `analytics['downloads']`: every platform added up."""
    rows = totals["by_platform"]
    return {f"{event}s": sum(r.get(event, 0) for r in rows) for event in ("view", "download", "share")}


def endpoints() -> list[Endpoint]:
    return [
        Endpoint("POST", "/videos/{id}/events", record_event, "Record a view, download or share on a platform",
                 body=AnalyticsEventBody, responses={201: Answer("recorded", AnalyticsEvent), 403: "not yours"}),
        Endpoint("GET", "/videos/{id}/analytics", video_analytics, "One video's counts per platform and day",
                 responses={200: Answer("OK", VideoAnalytics), 403: "not yours"}),
        Endpoint("GET", "/analytics", all_analytics, "Counts per video, campaign, platform and day",
                 responses={200: Answer("OK", Analytics)}),
    ]
