"""What every endpoint shares: the error type, body parsing, the caller and the video's JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from ..access import Caller
from ..errors import PayloadError, first_problem
from ..models import JSON_BODY
from ..decoding import load_json
from .bodies import MAX_ID

if TYPE_CHECKING:
    from ..campaigns.service import Campaigns
    from ..events import EventBus
    from ..inbox import Inbox
    from ..hookspecs import Renderer
    from ..jobs import JobRunner
    from ..models import FormatSpec
    from ..pipeline import Pipeline
    from ..previews import AvatarPreviews
    from ..publications import Publications
    from ..registry import Registry
    from ..video_requests import VideoRequests
    from ..settings import Settings
    from ..store import Job, Store

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = tuple[str, str, Handler]
"""A plugin's route: (method, path, handler)."""
DAEMON = web.AppKey("daemon", object)


class WebHost(Protocol):
    """What the API's handlers use of the running daemon: its settings, registries and services."""

    settings: "Settings"
    node_id: str
    formats: "Registry[FormatSpec]"
    renderers: "Registry[Renderer]"
    store: "Store"
    bus: "EventBus"
    inbox: "Inbox"
    pipeline: "Pipeline"
    jobs: "JobRunner"
    videos: "VideoRequests"
    campaigns: "Campaigns"
    previews: "AvatarPreviews"
    publishing: "Publications"
CALLER = web.RequestKey("caller", Caller)


class ApiError(Exception):
    """Becomes `{"error": message, "field": field}` with `status`."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


@dataclass
class Answer:
    """One status a route answers: its description, and its body's model (JSON) or media types (files)."""

    description: str
    model: type[BaseModel] | None = None
    media: tuple[str, ...] = ("application/json",)


@dataclass
class Endpoint:
    """One route, described once: the server registers it and /openapi.json documents it.

    `responses` lists what the handler itself answers; the document adds what every route of
    its kind answers (401 behind a token, 400/413/422 with a body, 404 for an unknown id).
    A plain string is a description; an error's body is always `ErrorReply`.
    """

    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None = None
    query: dict[str, dict[str, Any]] = field(default_factory=dict)   # name -> JSON schema, with a description
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)
    auth: bool = True
    responses: dict[int, str | Answer] = field(default_factory=lambda: {200: "OK"})
    upload: str | None = None  # a multipart/form-data body with the file in this field


def caller(request: web.Request) -> Caller:
    return request[CALLER]


def daemon_of(request: web.Request) -> WebHost:
    return request.app[DAEMON]


async def read_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = load_json(raw or b"null", "the body")
    except PayloadError as exc:
        raise ApiError(400, str(exc)) from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


async def parse_body(request: web.Request, model: type[M]) -> M:
    return validated(model, await read_object(request))


def validated(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data, context=JSON_BODY)
    except ValidationError as exc:
        where, reason = first_problem(exc)
        raise ApiError(422, f"{where or 'body'}: {reason}", where or None) from None


def int_arg(request: web.Request, name: str, default: int | None = None, low: int = 1,
            high: int = 10**9) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name}: {raw!r} is not a whole number", name) from None
    if not low <= value <= high:
        raise ApiError(400, f"{name}: must be between {low} and {high}", name)
    return value


async def visible_job(request: web.Request) -> "Job":
    """The job named in the path, if this caller may see it: 404 when absent, 403 when not theirs."""
    raw = request.match_info["id"]
    # Digits only (int() would also take " 7", "+7" and "٧"), and no larger than the store's ids.
    job_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 19 else 0
    if not 1 <= job_id <= MAX_ID:
        raise ApiError(404, f"no video {raw!r}")
    job = await daemon_of(request).store.job(job_id)
    if job is None:
        raise ApiError(404, f"no video {job_id}")
    who = caller(request)
    if not who.may_see(job):
        raise ApiError(403, f"video {job_id} belongs to another workspace; {who.name} may see only "
                            f"{who.workspace}'s videos")
    return job


def video_json(job: "Job") -> dict[str, Any]:
    result = job.result or {}
    return {
        "id": job.id, "title": job.title, "status": job.status.value, "percent": job.percent,
        "format": job.format, "avatar_profile_id": job.avatar_id, "renderer": job.renderer,
        "template_id": job.template_id, "research_job_id": job.research_job_id, "campaign_id": job.campaign_id,
        "workspace_id": job.workspace_id, "user_id": job.user_id, "error": job.error,
        "created_at": job.created_at, "updated_at": job.updated_at, "duration": result.get("duration"),
        "download_url": f"/videos/{job.id}/download" if result.get("video") else None,
        "thumbnail_url": f"/videos/{job.id}/files/thumbnail" if result.get("thumbnail") else None,
        "srt_url": f"/videos/{job.id}/files/captions.srt" if result.get("srt") else None,
        "vtt_url": f"/videos/{job.id}/files/captions.vtt" if result.get("vtt") else None,
        "video_url": result.get("video_url"),
        # a split script's part: number, of and the series its other parts share
        "part": (job.request.get("script") or {}).get("part"),
    }
