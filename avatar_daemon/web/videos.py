"""Avatars, videos and research over HTTP; every row passes the caller's access check."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from ..errors import ResearchError, UnknownNameError
from ..hookspecs import SyncsCatalogue
from ..jobs import NotRetryable
from ..models import JobState
from ..planning import VideoSettings
from ..video_requests import video_text
from .bodies import FromResearchBody, VideoBody, VideoSettingsBody
from .common import Answer, ApiError, Endpoint, caller, daemon_of, int_arg, parse_body, video_json, visible_job
from .plays import counted, explicit_download
from .replies import (
    Avatar, AvatarList, Cancelled, ResearchList, SeedResearchJobs, Video, VideoHistory, VideoList, VideoPage, VideosCreated, VideoStatus,
)

SHAPES = {"9:16": "portrait", "16:9": "landscape", "1:1": "square",
          "portrait": "portrait", "landscape": "landscape", "square": "square"}  # the seed says the shape
IDEMPOTENCY_KEY_MAX = 200


def _avatars(request: web.Request) -> list[dict[str, Any]]:
    """Profiles with preview URLs: a renderer catalogue's, else the ones this server draws.

    A renderer with a remote catalogue can draw only the profiles that carry its id; any other
    renderer draws every profile from the profile itself, so the registry answers, not a name.
    """
    d = daemon_of(request)
    urls = d.previews.urls("")
    anyone = [r.name for r in d.renderers if not isinstance(r, SyncsCatalogue)]
    catalogued = [r.name for r in d.renderers if isinstance(r, SyncsCatalogue)]
    return [{**profile.model_dump(mode="json", include={"id", "name", "avatar_type", "tier", "gender", "age_range",
                                                         "style", "description"}),
             "preview_image_url": urls[profile.id][0], "preview_video_url": urls[profile.id][1],
             "renderers": sorted({*anyone, *(n for n in catalogued if n in profile.renderer_ids)}),
             "subscription_tier": profile.tier, "preview_url": urls[profile.id][1]}  # the seed's names
            for profile in d.settings.avatars.values()]


async def avatar_preview(request: web.Request) -> web.StreamResponse:
    """Presenter art only, so no token: chat apps fetch these images without one."""
    try:
        path = await daemon_of(request).previews.path(request.match_info["id"], request.match_info["kind"])
    except UnknownNameError as exc:
        raise ApiError(404, str(exc)) from None
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})


AVATAR_TYPES = ("avatar", "talking_photo")


async def list_avatars(request: web.Request) -> web.Response:
    who = caller(request)
    d = daemon_of(request)
    kind = request.query.get("avatar_type")
    if kind is not None and kind not in AVATAR_TYPES:
        raise ApiError(400, f"avatar_type: {kind!r} is not one of {', '.join(AVATAR_TYPES)}", "avatar_type")
    allowed = [a for a in _avatars(request) if who.may_use(d.settings.avatars[a["id"]])
               and kind in (None, a["avatar_type"])]
    return web.json_response({"avatars": allowed, "tier": who.tier})


async def get_avatar(request: web.Request) -> web.Response:
    d = daemon_of(request)
    avatar_id = request.match_info["id"]
    profile = d.settings.avatars.get(avatar_id)
    if profile is None:
        raise ApiError(404, f"no avatar profile {avatar_id!r}")
    if not caller(request).may_use(profile):
        raise ApiError(403, caller(request).refusal(profile))
    return web.json_response(next(a for a in _avatars(request) if a["id"] == avatar_id))


def _settings(request: web.Request, body: VideoSettingsBody) -> dict[str, Any]:
    """Names checked, tier checked, defaults filled: what the jobs will be made with."""
    d = daemon_of(request)
    who = caller(request)
    avatar_id = body.avatar_profile_id or d.settings.default_avatar
    profile = d.settings.avatars.get(avatar_id)
    if profile is None:
        raise ApiError(422, f"avatar_profile_id: no avatar profile {avatar_id!r}", "avatar_profile_id")
    if not who.may_use(profile):
        raise ApiError(403, who.refusal(profile), "avatar_profile_id")
    if body.format:
        if body.format not in d.formats:
            raise ApiError(422, f"format: no format {body.format!r} (known: {', '.join(d.formats.names())})",
                           "format")
        fmt = body.format
    elif body.aspect_ratio:
        shape = SHAPES[body.aspect_ratio]
        # a default format of that shape, else the first registered one
        fmt = next((f for f in d.settings.default_formats if d.formats[f].orientation == shape),
                   next((f.name for f in d.formats if f.orientation == shape), None))
        if fmt is None:
            raise ApiError(422, f"aspect_ratio: no format here is {body.aspect_ratio}", "aspect_ratio")
    else:
        fmt = d.settings.default_formats[0]
    renderer = body.renderer or d.settings.default_renderer
    if renderer not in d.renderers:
        raise ApiError(422, f"renderer: no renderer {renderer!r}", "renderer")
    template = template_id(d.settings.templates, body.template_id) if body.template_id else \
        d.settings.default_template
    request_settings = {"voice_speed": body.voice_speed, "captions": body.enable_captions,
                        **body.model_dump(mode="json", include={"background", "narration", "talking_photo",
                                                     "brand_logo"})}
    request_settings = {k: v for k, v in request_settings.items() if v is not None}
    return {"avatar": avatar_id, "format": fmt, "renderer": renderer, "template": template,
            "request": request_settings}


def template_id(templates: dict[str, Any], given: str) -> str:
    """Ours, or the seed's id for it: the template's name in snake case ("Social Media Portrait")."""
    if given in templates:
        return given
    for t in templates.values():
        if given in (re.sub(r"[^a-z0-9]+", "_", t.name.lower()).strip("_"), t.id.replace("-", "_")):
            return t.id
    raise ApiError(422, f"template_id: no template {given!r} (known: {', '.join(sorted(templates)) or 'none'})",
                   "template_id")


def _created(jobs: list[Any], created: bool = True) -> web.Response:
    """201 for new videos; 200 when an Idempotency-Key found the first request's videos.

    `video_id` is the first video's id, for the seed's clients (`result.video_id`)."""
    body = {"video_id": jobs[0].id, "videos": [video_json(j) for j in jobs]}
    return web.json_response(body, status=201 if created else 200, headers={"Location": f"/videos/{jobs[0].id}"})


async def create_video(request: web.Request) -> web.Response:
    body = await parse_body(request, VideoBody)
    d = daemon_of(request)
    s = _settings(request, body)
    who = caller(request)
    header = request.headers.get("Idempotency-Key")
    if header is not None and not 1 <= len(header) <= IDEMPOTENCY_KEY_MAX:
        raise ApiError(400, f"Idempotency-Key: must be 1 to {IDEMPOTENCY_KEY_MAX} characters", "Idempotency-Key")
    key = f"http:{who.workspace}:{who.user}:{header}" if header else None  # one caller's key, not everyone's
    try:
        jobs, created = await d.videos.from_script(body.script_title, body.script_content, who=who,
                                                   avatar=s["avatar"], format_name=s["format"],
                                                   renderer=s["renderer"], template=s["template"],
                                                   settings=s["request"], key=key, split=bool(body.split),
                                                   text_over=video_text(body.title, body.description, body.hashtags))
    except ResearchError as exc:
        raise ApiError(422, f"script_content: {exc}", "script_content") from None
    return _created(jobs, created)


async def create_from_research(request: web.Request) -> web.Response:
    body = await parse_body(request, FromResearchBody)
    d = daemon_of(request)
    who = caller(request)
    s = _settings(request, body)
    if body.research_job_id is not None:
        try:
            jobs = await d.videos.from_research(body.research_job_id, who=who, avatar=s["avatar"],
                                                format_name=s["format"], renderer=s["renderer"],
                                                template=s["template"], settings=s["request"],
                                                title=body.script_title, split=bool(body.split),
                                                text_over=video_text(None, body.description, body.hashtags))
        except UnknownNameError as exc:
            raise ApiError(404, str(exc), "research_job_id") from None
        except ResearchError as exc:
            raise ApiError(422, f"research_job_id: {exc}", "research_job_id") from None
        except PermissionError as exc:
            raise ApiError(403, str(exc), "research_job_id") from None
        return _created(jobs)
    payload = body.research if body.source is None else {"source": body.source, "research": body.research}
    overrides = VideoSettings.model_validate({
        **s["request"], "formats": [s["format"]], "avatar": s["avatar"], "renderer": s["renderer"],
        "template": s["template"], "title": body.script_title, "description": body.description,
        "hashtags": body.hashtags, "workspace": who.workspace, "user": who.user, "split": body.split})
    try:
        ingested = await d.pipeline.ingest(json.dumps(payload).encode(), "request.json", ".json",
                                           overrides=overrides, fresh_jobs=True, remote=True)
    except (ResearchError, UnknownNameError) as exc:
        raise ApiError(422, f"research: {exc}", "research") from None
    return _created([await d.store.job(i) for i in ingested.job_ids])


async def list_research(request: web.Request) -> web.Response:
    """`with_insights=true` is filtered by the store, so older research to pick from is not hidden behind
    newer plain scripts; `next` pages on, as /videos does."""
    flag = request.query.get("with_insights", "false")
    if flag not in ("true", "false"):
        raise ApiError(400, f"with_insights: {flag!r} is not true or false", "with_insights")
    limit = int_arg(request, "limit", 20, high=100)
    rows = await _research_rows(request, with_insights=flag == "true", before=int_arg(request, "before"))
    more = len(rows) == limit
    return web.json_response({"research": rows, "next": f"/research?before={rows[-1]['id']}&limit={limit}"
                              + ("&with_insights=true" if flag == "true" else "") if more else None})


async def list_research_jobs(request: web.Request) -> web.Response:
    """The seed page's `GET /api/research/jobs?status=completed`: a bare list, each job marked completed.

    Every stored research job has completed (failed research is refused at the door), so the
    seed's status filter lists them all."""
    if request.query.get("status", "completed") != "completed":
        raise ApiError(400, f"status: stored research jobs are all completed, not {request.query['status']!r}",
                       "status")
    return web.json_response([{**row, "status": "completed"} for row in await _research_rows(request)])


async def _research_rows(request: web.Request, with_insights: bool = False,
                         before: int | None = None) -> list[dict[str, Any]]:
    who = caller(request)
    limit = int_arg(request, "limit", 20, high=100)
    rows = await daemon_of(request).store.research_page(None if who.admin else who.workspace, limit,
                                                        with_insights=with_insights, before=before)
    return [{"id": r.id, "source": r.source, "title": r.title, "topic": r.topic, "insights": len(r.research.insights),
             "estimated_seconds": r.script.estimated_seconds, "created_at": r.created_at} for r in rows]


async def list_videos(request: web.Request) -> web.Response:
    who = caller(request)
    status = request.query.get("status")
    if status and status not in {s.value for s in JobState}:
        raise ApiError(400, f"status: {status!r} is not one of {', '.join(s.value for s in JobState)}", "status")
    limit = int_arg(request, "limit", 50, high=200)
    before = int_arg(request, "before")
    jobs = await daemon_of(request).store.jobs_page(who.owner_filter(), status, limit, before)
    more = len(jobs) == limit
    return web.json_response({"videos": [video_json(j) for j in jobs],
                              "next": f"/videos?before={jobs[-1].id}&limit={limit}"
                                      + (f"&status={status}" if status else "") if more else None})


async def get_video(request: web.Request) -> web.Response:
    job = await visible_job(request)
    script = await daemon_of(request).jobs.script_for(job)
    page = {"description": script.description, "hashtags": script.hashtags, "script_notes": script.notes} \
        if script else {}
    return web.json_response({**video_json(job), **page})


async def video_status(request: web.Request) -> web.Response:
    job = await visible_job(request)
    return web.json_response({"id": job.id, "video_id": job.id, "status": job.status.value,
                              "percent": job.percent, "error": job.error, "error_message": job.error,
                              "video_url": video_json(job)["download_url"] or (job.result or {}).get("video_url")})


async def video_history(request: web.Request) -> web.Response:
    """Which daemon did what: an operator's view of a job across the nodes (event data stays on the server)."""
    job = await visible_job(request)
    events = await daemon_of(request).store.events(job.id)
    return web.json_response({"id": job.id, "events": [
        {"state": e.state.value, "percent": e.percent, "message": e.message, "at": e.at.isoformat(),
         "node_id": e.node_id,
         **({"next_check_at": str(e.data["next_check_at"])} if e.data.get("next_check_at") else {})}
        for e in events]})


async def cancel_video(request: web.Request) -> web.Response:
    job = await visible_job(request)
    if not await daemon_of(request).jobs.cancel(job.id):
        raise ApiError(409, f"video {job.id} has already ended ({job.status.value}); there is nothing to cancel")
    return web.json_response({"id": job.id, "status": "cancelled"})


async def retry_video(request: web.Request) -> web.Response:
    job = await visible_job(request)
    try:
        job = await daemon_of(request).jobs.retry(job.id, caller(request))
    except NotRetryable as exc:
        raise ApiError(409, str(exc)) from None
    return web.json_response(video_json(job), status=202)


async def download_video(request: web.Request) -> web.StreamResponse:
    job = await visible_job(request)
    path = Path((job.result or {}).get("video") or "")
    if job.status is not JobState.completed or not path.is_file():
        raise ApiError(409 if job.status is not JobState.completed else 410,
                       f"video {job.id} has no file to download ({job.status.value})")
    d = daemon_of(request)
    who = caller(request)
    event = counted(request, job.id, f"{who.name}:{request.remote}", d.clock(), whole_get_is_download=True)
    if event:
        await d.store.add_analytics(job.id, event, "api")
    # A player's ranges play inline; a download is saved. The type the document promises, not one
    # guessed from the file's name.
    disposition = "attachment" if explicit_download(request, whole_get_is_download=True) else "inline"
    return web.FileResponse(path, headers={"Content-Disposition": f'{disposition}; filename="video-{job.id}.mp4"',
                                           "Content-Type": "video/mp4"})


FILES = {"thumbnail": ("thumbnail", "image/jpeg", "jpg"), "captions.srt": ("srt", "application/x-subrip", "srt"),
         "captions.vtt": ("vtt", "text/vtt", "vtt")}


async def video_file(request: web.Request) -> web.StreamResponse:
    """A finished video's thumbnail and caption files, for a player beside the MP4."""
    job = await visible_job(request)
    kind = request.match_info["kind"]
    if kind not in FILES:
        raise ApiError(404, f"no file {kind!r} (known: {', '.join(FILES)})")
    key, media_type, ext = FILES[kind]
    path = Path((job.result or {}).get(key) or "")
    if job.status is not JobState.completed or not path.is_file():
        raise ApiError(409 if job.status is not JobState.completed else 404,
                       f"video {job.id} has no {kind} ({job.status.value})")
    return web.FileResponse(path, headers={"Content-Type": media_type,
                                           "Content-Disposition": f'inline; filename="video-{job.id}.{ext}"'})


def endpoints() -> list[Endpoint]:
    limit = {"type": "integer", "minimum": 1}
    return [
        Endpoint("GET", "/avatars", list_avatars, "Avatar profiles the caller's tier may use, with previews",
                 query={"avatar_type": {"type": "string", "enum": list(AVATAR_TYPES),
                                        "description": "only presenters (avatar) or only talking photos"}},
                 responses={200: Answer("OK", AvatarList), 400: "an avatar_type that is not one of the two"}),
        Endpoint("GET", "/avatars/{id}", get_avatar, "One avatar profile (403 above the caller's tier)",
                 responses={200: Answer("OK", Avatar), 403: "above the caller's tier", 404: "unknown"}),
        Endpoint("GET", "/avatars/{id}/preview.{kind}", avatar_preview,
                 "An avatar's preview still (jpg) or 3-second clip (mp4), drawn on first request", auth=False,
                 responses={200: Answer("the file", media=("image/jpeg", "video/mp4")),
                            404: "unknown avatar or kind"}),
        Endpoint("POST", "/videos", create_video, "Make a video of a script (an Idempotency-Key header makes a "
                 "retry find the first request's video)", body=VideoBody,
                 headers={"Idempotency-Key": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX,
                                              "description": "a retry with the same key finds the first video"}},
                 responses={200: Answer("the same Idempotency-Key was seen", VideosCreated),
                            201: Answer("queued", VideosCreated), 403: "avatar above tier",
                            422: "invalid field, or media that cannot be fetched or is not what it claims"}),
        Endpoint("POST", "/videos/from-research", create_from_research,
                 "Make a video of a stored research job or an inline research payload", body=FromResearchBody,
                 responses={201: Answer("queued", VideosCreated), 403: "not yours", 404: "unknown research",
                            422: "invalid field, or media that cannot be fetched or is not what it claims"}),
        Endpoint("POST", "/api/avatar-video/videos/from-research", create_from_research,
                 "The same as POST /videos/from-research, where the seed's page posts it", body=FromResearchBody,
                 responses={201: Answer("queued", VideosCreated), 403: "not yours", 404: "unknown research",
                            422: "invalid field, or media that cannot be fetched or is not what it claims"}),
        Endpoint("GET", "/research", list_research, "Recent research jobs",
                 query={"limit": {**limit, "maximum": 100, "description": "how many, 1-100"},
                        "before": {**limit, "description": "only research older than this id (the `next` link)"},
                        "with_insights": {"type": "string", "enum": ["true", "false"],
                                          "description": "only research with insights to pick from"}},
                 responses={200: Answer("OK", ResearchList)}),
        Endpoint("GET", "/api/research/jobs", list_research_jobs, "Recent research jobs as the seed's page reads "
                 "them: a list",
                 query={"limit": {**limit, "maximum": 100, "description": "how many, 1-100"},
                        "status": {"type": "string", "enum": ["completed"],
                                   "description": "stored research has always completed"}},
                 responses={200: Answer("OK", SeedResearchJobs)}),
        Endpoint("GET", "/videos", list_videos, "The caller's and their workspace's videos, newest first",
                 query={"status": {"type": "string", "enum": [s.value for s in JobState],
                                   "description": "only videos in this state"},
                        "limit": {**limit, "maximum": 200, "description": "how many, 1-200"},
                        "before": {**limit, "maximum": 10**9, "description": "a video id: the next page"}},
                 responses={200: Answer("OK", VideoList)}),
        Endpoint("GET", "/videos/{id}", get_video, "One video",
                 responses={200: Answer("OK", VideoPage), 403: "another workspace's", 404: "unknown"}),
        Endpoint("GET", "/videos/{id}/status", video_status, "A video's state and percent",
                 responses={200: Answer("OK", VideoStatus), 403: "another workspace's"}),
        Endpoint("GET", "/videos/{id}/history", video_history,
                 "A video's state changes, oldest first, each with the daemon (node) that made it",
                 responses={200: Answer("OK", VideoHistory), 403: "another workspace's"}),
        Endpoint("DELETE", "/videos/{id}", cancel_video, "Cancel a queued or running video",
                 responses={200: Answer("cancelled", Cancelled), 403: "another workspace's",
                            409: "already ended"}),
        Endpoint("POST", "/videos/{id}/cancel", cancel_video, "Cancel a queued or running video (as DELETE does)",
                 responses={200: Answer("cancelled", Cancelled), 403: "another workspace's",
                            409: "already ended"}),
        Endpoint("POST", "/videos/{id}/retry", retry_video,
                 "Queue a failed, timed-out or cancelled video again (same id; a new try)",
                 responses={202: Answer("queued again", Video), 403: "another workspace's", 404: "unknown",
                            409: "completed or not ended"}),
        Endpoint("GET", "/videos/{id}/files/{kind}", video_file,
                 "A finished video's thumbnail (JPEG) or captions (captions.srt, captions.vtt)",
                 responses={200: Answer("the file", media=("image/jpeg", "application/x-subrip", "text/vtt")),
                            403: "another workspace's", 404: "unknown video, or no such file",
                            409: "not finished"}),
        Endpoint("GET", "/videos/{id}/download", download_video, "The MP4 (Range requests supported). A GET of "
                 "the whole file, or ?download=1, counts a download; a player's ranges count one view per play",
                 headers={"Range": {"type": "string", "description": "bytes=start-end: only part of the file"}},
                 query={"download": {"type": "string", "enum": ["1"],
                                     "description": "save it (attachment) and count a download even when ranged"}},
                 responses={200: Answer("the file", media=("video/mp4",)),
                            206: Answer("part of the file", media=("video/mp4",)), 403: "another workspace's",
                            409: "not finished", 410: "finished, but its file is gone",
                            416: Answer("the Range is malformed or outside the file (Content-Range gives its "
                                        "size); no body", media=())}),
    ]
