"""The YouTube publisher's settings (daemon.yaml `plugins.settings.youtube`); credentials are the account's secrets."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

QUANTUM = 262144
"""256 KiB: every chunk of a resumable upload but the last is a multiple of it."""


class YouTubeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Google's endpoints; tests and proxies point them elsewhere.
    token_url: str = "https://oauth2.googleapis.com/token"
    upload_url: str = "https://www.googleapis.com/upload/youtube/v3/videos"
    api_url: str = "https://www.googleapis.com/youtube/v3"

    # 8 MiB: a short is a few chunks, so progress moves and a dropped chunk costs little.
    chunk_size: int = Field(32 * QUANTUM, gt=0)
    # Quick retries inside one attempt (a 5xx, a dropped connection) before the publication is
    # handed back to the core to be retried later from what was saved.
    retries: int = Field(4, ge=0)
    backoff_seconds: float = Field(1.0, gt=0)
    request_timeout_seconds: float = Field(30.0, gt=0)
    chunk_timeout_seconds: float = Field(300.0, gt=0)

    # status.containsSyntheticMedia, YouTube's disclosure of realistic altered or synthetic content:
    # a talking avatar is that. A request's `publish.extra.contains_synthetic_media` overrides it.
    contains_synthetic_media: bool = True
    # snippet.categoryId when neither the request nor the campaign names one (None: the channel's default).
    category: str | None = None

    @field_validator("chunk_size")
    @classmethod
    def _whole_quanta(cls, v: int) -> int:
        if v % QUANTUM:
            raise ValueError(f"must be a multiple of {QUANTUM} (256 KiB), as YouTube's resumable upload requires; "
                             f"{v} is not (try {max(1, round(v / QUANTUM)) * QUANTUM})")
        return v
