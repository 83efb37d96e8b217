"""Request bodies: pydantic models, so a bad field comes back as 422 naming it and the reason."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..models import PublicBackground, PublicMedia

# SQLite's INTEGER: a larger id names nothing, and is refused before it reaches the store.
MAX_ID = 2**63 - 1


class VideoSettingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    avatar_profile_id: str | None = None
    aspect_ratio: Literal["9:16", "16:9", "1:1"] | None = Field(
        None, description="picks the default format of that shape: 9:16 tiktok, 16:9 youtube, 1:1 square")
    format: str | None = Field(None, description="a format name (tiktok, reels, shorts, youtube, square, ...)")
    voice_speed: float | None = Field(None, ge=0.5, le=1.5)
    enable_captions: bool | None = None
    template_id: str | None = None
    # Media by URL only: a remote caller never names a file on the server.
    background: PublicBackground | None = None
    narration: PublicMedia | None = Field(None, description="recorded speech to use instead of a synthetic voice")
    talking_photo: PublicMedia | None = Field(None, description="a portrait photo that talks instead of the avatar")
    renderer: str | None = None


class VideoBody(VideoSettingsBody):
    script_title: str = Field(min_length=1, max_length=200)
    script_content: str = Field(min_length=1, max_length=20_000)


class FromResearchBody(VideoSettingsBody):
    research_job_id: int | None = Field(None, ge=1, le=MAX_ID)
    research: Any = Field(None, description="an inline research payload in any shape the inbox accepts")
    source: str | None = Field(None, description="the source of an inline payload, when detection is not enough")
    script_title: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _one(self) -> "FromResearchBody":
        if (self.research_job_id is None) == (self.research is None):
            raise ValueError("give research_job_id or research, not both or neither")
        return self


class AnalyticsEventBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: Literal["view", "download", "share"]
    platform: str = Field("api", min_length=1, max_length=40, pattern=r"^[a-z0-9_.-]+$")


class CampaignPatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paused: bool
