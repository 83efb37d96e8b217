"""Response bodies as /openapi.json documents them.

tests/test_openapi.py runs schemathesis against a running daemon: an answer that strays from
these models (or a status no route declares) fails it, so the document cannot drift.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from ..models import JobState, Tier



class Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorReply(Reply):
    """Every refusal: the reason in a sentence, and the field to fix when one is to blame."""

    error: str
    field: str | None = Field(None, description="the request field at fault, dotted for nested ones")


class Health(Reply):
    ok: bool
    jobs: dict[str, int] = Field(description="jobs by state")
    inbox: dict[str, int] = Field(description="files taken from the inbox by outcome")
    node: str = Field(description="the id of the daemon that answered, among several sharing one database")
    database: str = Field(description="the database it uses, without any password")


class Avatar(Reply):
    id: str
    name: str
    avatar_type: Literal["avatar", "talking_photo"] = Field(
        description="talking_photo: a portrait that speaks (a photo-avatar look or an uploaded photo)")
    tier: Tier
    gender: str
    age_range: str
    style: str
    description: str
    preview_image_url: str | None
    preview_video_url: str | None
    renderers: list[str]
    subscription_tier: Tier = Field(description="the same as tier, by the seed's name")
    preview_url: str | None = Field(description="the same as preview_video_url, by the seed's name")


class AvatarList(Reply):
    avatars: list[Avatar]
    tier: str = Field(description="the caller's tier")


class VideoPart(Reply):
    number: int
    of: int
    series: str = Field(description="the same for every part of one split script")


class Video(Reply):
    id: int
    title: str
    status: JobState
    percent: float
    format: str
    avatar_profile_id: str
    renderer: str
    template_id: str | None
    research_job_id: int | None
    campaign_id: int | None
    workspace_id: str | None
    user_id: str | None
    error: str | None
    created_at: str
    updated_at: str
    duration: float | None
    download_url: str | None = Field(description="this server's MP4, once rendered locally")
    thumbnail_url: str | None = Field(None, description="this server's thumbnail, once rendered")
    srt_url: str | None = Field(None, description="the captions as SRT, once rendered")
    vtt_url: str | None = Field(None, description="the captions as WebVTT, once rendered")
    video_url: str | None = Field(description="the renderer's own link (HeyGen), when it gave one")
    part: VideoPart | None = Field(None, description="which part of a script split into several videos this is")


class VideoPage(Video):
    """One video with what its page shows beside the player (and what publishing posts)."""

    description: str = Field("", description="the insights and their source links")
    hashtags: list[str] = Field(default_factory=list)
    script_notes: list[str] = Field(default_factory=list, description="what the writer left out or fell back on")


class VideosCreated(Reply):
    video_id: int = Field(description="the first video's id (the seed's answer)")
    videos: list[Video] = Field(min_length=1, description="one per format asked for")


class VideoList(Reply):
    videos: list[Video]
    next: str | None = Field(description="the next page's path, when there may be more")


class VideoStatus(Reply):
    id: int
    video_id: int = Field(description="the same id, by the seed's name")
    status: JobState
    percent: float
    error: str | None
    error_message: str | None = Field(description="the same as error, by the seed's name")
    video_url: str | None


class HistoryEvent(Reply):
    state: JobState
    percent: float | None
    message: str
    at: str
    node_id: str | None = Field(description="the daemon that made this change, among several sharing one database")
    next_check_at: str | None = Field(None, description="waiting_remote: when the remote render is next checked")


class VideoHistory(Reply):
    id: int
    events: list[HistoryEvent] = Field(description="the video's state changes and progress, oldest first")


class Cancelled(Reply):
    id: int
    status: Literal["cancelled"]


class ResearchRow(Reply):
    id: int
    source: str
    title: str
    topic: str
    insights: int
    estimated_seconds: float
    created_at: str


class ResearchList(Reply):
    research: list[ResearchRow]
    next: str | None = Field(None, description="the next page, when this one is full")


class SeedResearchJob(ResearchRow):
    status: Literal["completed"] = Field(description="stored research has always completed")


class SeedResearchJobs(RootModel[list[SeedResearchJob]]):
    """The seed page's `loadResearchJobs()` reads a bare list of jobs."""


class AnalyticsEvent(Reply):
    video_id: int
    event: Literal["view", "download", "share"]
    event_type: Literal["view", "download", "share"] = Field(description="the same, by the seed's name")
    platform: str


class Count(BaseModel):
    """Events of one key (a video, campaign, platform or day), by event name."""

    model_config = ConfigDict(extra="allow")

    key: int | str | None
    view: int = Field(0, description="plays here, and the platform's own count of views of its posts")
    download: int = 0
    share: int = 0
    like: int = Field(0, description="the platforms' likes of published posts")
    comment: int = Field(0, description="the platforms' comments on published posts")


class VideoAnalytics(Reply):
    video_id: int
    views: int = Field(description="totals over every platform, by the seed's names")
    downloads: int
    shares: int
    by_platform: list[Count]
    by_day: list[Count]


class Analytics(Reply):
    views: int = Field(description="totals over every video the caller may see, by the seed's names")
    downloads: int
    shares: int
    by_video: list[Count]
    by_campaign: list[Count]
    by_platform: list[Count]
    by_day: list[Count]



class AssetReply(Reply):
    asset_id: str
    kind: Literal["image", "video", "audio"]
    bytes: int
    sha256: str
    content_type: str
    workspace: str | None
    user: str | None
    filename: str
    created_at: str


class AssetList(Reply):
    assets: list[AssetReply]
