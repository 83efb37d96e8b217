"""Publishing over HTTP: post a finished video to a platform account, and see where its posts are.

Every trigger goes through `Host.publishing.request`, which finds the row a (video, platform,
account) already has: a double click, a retried request or a campaign's auto_post on the
same video answer the same publication, never a second post.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from ..errors import UnknownNameError
from ..models import Flag
from .common import Answer, ApiError, Endpoint, caller, daemon_of, parse_body, visible_job
from .replies import Reply

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class PublishBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platforms: list[str] = Field(min_length=1, max_length=10, description="platform names (GET /publishing "
                                                                         "lists those with an account)")
    accounts: list[str] | None = Field(None, max_length=20, description="account names; each platform's default "
                                                                       "account when left out")
    privacy: Literal["private", "unlisted", "public"] | None = Field(
        None, description="private unless asked: platforms keep unaudited apps' posts private anyway")
    made_for_kids: Flag | None = None
    category: str | None = Field(None, min_length=1, max_length=40, description="the platform's category id")

    def options(self) -> dict:
        return self.model_dump(include={"privacy", "made_for_kids", "category"}, exclude_none=True)


class PublicationReply(Reply):
    id: int
    job_id: int
    platform: str
    account: str
    state: Literal["pending", "uploading", "processing", "published", "failed"]
    percent: float
    remote_id: str | None
    url: str | None = Field(description="the post on the platform, once published")
    error: str | None = Field(description="the platform's reason, when failed")
    message: str
    not_before: str | None = Field(description="waiting (a quota, a retry) until then")
    requested_by: str
    created_at: str
    updated_at: str
    published_at: str | None


class PublicationList(Reply):
    video_id: int
    publications: list[PublicationReply]


class Platforms(Reply):
    platforms: dict[str, list[str]] = Field(description="platform -> its account names, for each platform a "
                                                        "publisher is installed for and an account configured")


async def publish(request: web.Request) -> web.Response:
    job = await visible_job(request)
    body = await parse_body(request, PublishBody)
    d = daemon_of(request)
    before = {p["id"] for p in await d.publishing.for_video(job.id)}
    try:
        rows = await d.publishing.request(job.id, body.platforms, accounts=body.accounts, options=body.options(),
                                          by=f"api:{caller(request).name}")
    except UnknownNameError as exc:  # a platform no publisher handles, or an account not configured
        field = "accounts" if str(exc).startswith("no account") or "accounts (" in str(exc) else "platforms"
        raise ApiError(422, f"{field}: {exc}", field) from None
    created = any(r["id"] not in before for r in rows)
    return web.json_response({"video_id": job.id, "publications": rows}, status=202 if created else 200)


async def publications(request: web.Request) -> web.Response:
    job = await visible_job(request)
    return web.json_response({"video_id": job.id, "publications": await daemon_of(request).publishing.for_video(
        job.id)})


async def platforms(request: web.Request) -> web.Response:
    return web.json_response({"platforms": daemon_of(request).publishing.platforms()})


def endpoints() -> list[Endpoint]:
    return [
        Endpoint("GET", "/publishing", platforms, "The platforms and accounts a video can be published to",
                 responses={200: Answer("OK", Platforms)}),
        Endpoint("POST", "/videos/{id}/publish", publish, "Publish a finished video to platform accounts; asking "
                 "again answers the same publications (never a second post)", body=PublishBody,
                 responses={200: Answer("asked before: the publications as they are", PublicationList),
                            202: Answer("queued", PublicationList), 403: "another workspace's", 404: "unknown",
                            422: "not finished, an unknown platform or account, or bad options"}),
        Endpoint("GET", "/videos/{id}/publications", publications, "A video's publications and their states",
                 responses={200: Answer("OK", PublicationList), 403: "another workspace's", 404: "unknown"}),
    ]
