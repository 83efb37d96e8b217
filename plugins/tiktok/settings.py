"""The TikTok publisher's settings (daemon.yaml `plugins.settings.tiktok`); credentials are the account's secrets."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MiB = 1024 * 1024


class TikTokSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str = "https://open.tiktokapis.com"
    # The chunk we send a file in once it is 5 MiB or more: TikTok takes 5-64 MiB chunks (the last may
    # be bigger, up to 128 MiB), so a smaller chunk loses less to a dropped connection.
    chunk_bytes: int = Field(16 * MiB, ge=5 * MiB, le=64 * MiB)
    request_timeout_seconds: float = Field(60.0, gt=0)
    chunk_timeout_seconds: float = Field(600.0, gt=0)
    # Waiting for TikTok to process the upload: first look after poll_first_seconds, then back off.
    poll_first_seconds: float = Field(3.0, ge=0)
    poll_factor: float = Field(1.5, ge=1.0)
    poll_max_interval_seconds: float = Field(30.0, gt=0)
    # Past this the attempt ends with "try again later"; the next one asks TikTok for the saved publish_id.
    processing_deadline_seconds: float = Field(900.0, gt=0)
    # How far ahead a publication waits at TikTok's per-minute limits (6 inits, 20 creator_info queries).
    rate_limit_wait_seconds: float = Field(60.0, gt=0)
    # ... and at `spam_risk_too_many_posts`, TikTok's cap on API posts a day for one creator.
    post_cap_wait_seconds: float = Field(3600.0, gt=0)
