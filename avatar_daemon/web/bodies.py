"""Request bodies: pydantic models, so a bad field comes back as 422 naming it and the reason."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..models import AssetId, Flag, Hashtags, MediaUrl, PublicBackground, PublicMedia, VideoDescription, VideoTitle

# SQLite's INTEGER: a larger id names nothing, and is refused before it reaches the store.
MAX_ID = 2**63 - 1


class VideoSettingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    avatar_profile_id: str | None = None
    aspect_ratio: Literal["9:16", "16:9", "1:1", "portrait", "landscape", "square"] | None = Field(
        None, description="picks the default format of that shape: 9:16 (portrait) tiktok, 16:9 (landscape) "
                          "youtube, 1:1 (square) square")
    format: str | None = Field(None, description="a format name (tiktok, reels, shorts, youtube, square, ...)")
    voice_speed: float | None = Field(None, ge=0.5, le=1.5)
    enable_captions: Flag | None = None
    template_id: str | None = Field(None, description="a template id; the seed's ids (social_media_portrait, "
                                                      "youtube_landscape, square_social) name the same ones")
    # Media by URL only: a remote caller never names a file on the server.
    background: PublicBackground | None = None
    background_type: Literal["color", "gradient", "image", "video"] | None = Field(
        None, description="the seed's flat form of background.type")
    background_url: MediaUrl | None = Field(None, description="the seed's flat form of background.url")
    narration: PublicMedia | None = Field(None, description="recorded speech to use instead of a synthetic voice")
    talking_photo: PublicMedia | None = Field(None, description="a portrait photo that talks instead of the avatar")
    narration_asset_id: AssetId | None = Field(None, description="narration: {asset_id} spelt flat")
    photo_asset_id: AssetId | None = Field(None, description="talking_photo: {asset_id} spelt flat")
    brand_logo: PublicMedia | None = Field(None, description="a logo (an image you uploaded with POST /assets) "
                                                             "drawn in the brand corner, over the template's")
    brand_logo_asset_id: AssetId | None = Field(None, description="brand_logo: {asset_id} spelt flat")
    renderer: str | None = None
    description: VideoDescription | None = Field(None, description="the video's page text, instead of the one "
                                                                   "built from the research")
    hashtags: Hashtags | None = Field(None, description="the video's hashtags, instead of the research's; [] for none")
    split: Flag | None = Field(None, description="a script too long for the format becomes several videos, "
                                                 "\"(Part 1 of N)\", split between sentences; without it, refused")

    @model_validator(mode="after")
    def _flat_uploads(self) -> "VideoSettingsBody":
        for flat, nested in (("narration_asset_id", "narration"), ("photo_asset_id", "talking_photo"),
                             ("brand_logo_asset_id", "brand_logo")):
            if getattr(self, flat) is not None:
                if getattr(self, nested) is not None:
                    raise ValueError(f"give {nested} or {flat}, not both")
                setattr(self, nested, PublicMedia(asset_id=getattr(self, flat)))
                setattr(self, flat, None)
        return self

    @model_validator(mode="after")
    def _flat_background(self) -> "VideoSettingsBody":
        """The seed's `background_type`/`background_url` are `background` spelt flat; one spelling at a time."""
        if self.background_type is None and self.background_url is None:
            return self
        if self.background is not None:
            raise ValueError("give background, or background_type and background_url, not both")
        kind = self.background_type or "image"
        self.background = PublicBackground.model_validate(
            {"type": kind, **({"url": self.background_url} if self.background_url else {})})
        self.background_type = self.background_url = None
        return self


class VideoBody(VideoSettingsBody):
    script_title: str = Field(min_length=1, max_length=200)
    script_content: str = Field(min_length=1, max_length=20_000)
    title: VideoTitle | None = Field(None, description="the video's title, when it should not be script_title")


class FromResearchBody(VideoSettingsBody):
    research_job_id: int | None = Field(None, ge=1, le=MAX_ID)
    research: Any = Field(None, description="an inline research payload in any shape the inbox accepts")
    source: str | None = Field(None, description="the source of an inline payload, when detection is not enough")
    script_title: str | None = Field(None, max_length=200)
    custom_title: str | None = Field(None, min_length=1, max_length=200, description="the seed's script_title")
    title: str | None = Field(None, min_length=1, max_length=200, description="the seed's script_title")

    @model_validator(mode="after")
    def _one(self) -> "FromResearchBody":
        if (self.research_job_id is None) == (self.research is None):
            raise ValueError("give research_job_id or research, not both or neither")
        titles = [t for t in (self.script_title, self.custom_title, self.title) if t is not None]
        if len(titles) > 1:
            raise ValueError("give one of script_title, custom_title and title")
        self.script_title = titles[0] if titles else None
        self.custom_title = self.title = None
        return self


class AnalyticsEventBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: Literal["view", "download", "share"] | None = None
    event_type: Literal["view", "download", "share"] | None = Field(None, description="the seed's name for event")
    platform: str = Field("api", min_length=1, max_length=40, pattern=r"^[a-z0-9_.-]+$")

    @model_validator(mode="after")
    def _named(self) -> "AnalyticsEventBody":
        if (self.event is None) == (self.event_type is None):
            raise ValueError("give event (or the seed's event_type), one of them")
        self.event = self.event or self.event_type
        return self


class CampaignPatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paused: Flag


# What only the seed's campaign body has: a body with any of these is read as the seed's.
SEED_CAMPAIGN_KEYS = {"research_config_id", "source_tools", "frequency", "auto_post_enabled", "post_platforms",
                      "avatar_profile_id", "is_active"}


class SeedCampaignBody(BaseModel):
    """The seed's POST /campaigns body (a video_campaigns row), written as a campaign file of ours.

    `name` may have spaces: the file's name is its slug, the words stay as the description. The
    seed's research configuration belongs to its research service, which this daemon is not;
    the campaign draws on the research of `source_tools` and keeps the configuration's id in its
    description, so nothing sent is dropped.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"[A-Za-z0-9]")
    research_config_id: str | None = Field(None, max_length=200)
    source_tools: list[str] = Field(min_length=1, description="source names: google_trends, reddit, hackernews, "
                                                              "github")
    frequency: Literal["daily", "weekly", "bi-weekly", "biweekly"] = "daily"
    max_videos_per_day: int = Field(3, ge=0, le=1000)
    auto_post_enabled: Flag = False
    post_platforms: list[Literal["tiktok", "instagram", "youtube"]] = Field(default_factory=list)
    avatar_profile_id: str | None = None
    is_active: Flag = True

    @model_validator(mode="after")
    def _platforms(self) -> "SeedCampaignBody":
        if self.auto_post_enabled and not self.post_platforms:
            raise ValueError("auto_post_enabled needs post_platforms to post to")
        return self

    def campaign(self) -> dict[str, Any]:
        slug = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")[:64].rstrip("-")
        about = self.name + (f" (research configuration {self.research_config_id})" if self.research_config_id
                             else "")
        return {"name": slug, "description": about, "active": self.is_active,
                "sources": [{"source": s} for s in dict.fromkeys(self.source_tools)],
                "schedule": {"every": self.frequency.replace("-", "")},
                "max_videos_per_day": self.max_videos_per_day, "avatar": self.avatar_profile_id,
                "auto_post": self.post_platforms if self.auto_post_enabled else []}
