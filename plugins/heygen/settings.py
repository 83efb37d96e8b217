"""The HeyGen plugin's settings (daemon.yaml `plugins.settings.heygen`); the key itself is a secret."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TemplateLink(BaseModel):
    """One of our templates made by a HeyGen template instead: its id and what fills each text variable."""

    model_config = ConfigDict(extra="forbid")

    template_id: str
    # variable name -> "script", "title", or any other text used as is
    variables: dict[str, str] = Field(default_factory=lambda: {"script": "script"})


class HeyGenSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str = "https://api.heygen.com"
    upload_url: str = "https://upload.heygen.com"
    # Where HeyGen can reach this daemon (https://host); set it and the daemon registers its webhook.
    public_url: str | None = None
    webhook_path: str = "/plugins/heygen/webhook"

    # Jobs submitting at once on a daemon (a submitted job waits for HeyGen holding no slot), and checks
    # on waiting jobs at once. A 429 that still comes (the key shared, a cap set too high) is waited
    # out until deadline_seconds.
    max_concurrency: int = Field(10, ge=1)
    # Videos HeyGen renders at once for the key (pay-as-you-go 10; v2 plans Free 1, Pro 3, Scale 6):
    # a create waits for one to finish rather than being refused. Counted across the nodes on one database.
    account_concurrency: int = Field(10, ge=1)
    max_calls_in_flight: int = Field(4, ge=1)
    retries: int = Field(4, ge=0)
    request_timeout_seconds: float = Field(30.0, gt=0)
    retry_after_cap_seconds: float = Field(120.0, gt=0)
    backoff_seconds: float = Field(1.0, gt=0)

    resolution: Literal["720p", "1080p", "4k"] = "1080p"  # the plan's ceiling
    square: Literal["crop", "pad", "studio"] = "crop"
    long_scripts: Literal["split", "studio"] = "split"
    text_limit: int = Field(5000, ge=100)
    pitch: int = Field(0, ge=-50, le=50)
    locale: str = "en-US"
    caption_style: str = "default"
    # Studio test mode: watermarked and free, for previews and staging.
    test_mode: bool = False

    # Waiting: the first status call lands when the video should be ready (render_ratio seconds of
    # rendering per second of video, learned from finished renders), then backs off.
    poll_first_seconds: float = Field(30.0, ge=0)
    poll_factor: float = Field(1.6, ge=1.0)
    poll_max_interval_seconds: float = Field(300.0, gt=0)
    render_ratio: float = Field(6.0, gt=0)
    # With a webhook, polling is only a safety net: it waits this many times longer.
    webhook_grace: float = Field(2.5, ge=1.0)
    deadline_seconds: float = Field(3 * 3600.0, gt=0)
    # How often `avatar-daemon render` (one process, no daemon) reports estimated progress between looks.
    progress_tick_seconds: float = Field(2.0, gt=0)

    max_download_bytes: int = Field(2 * 1024**3, gt=0)

    # Cost guard: credits are money.
    max_renders_per_day: int | None = None
    max_seconds_per_day: float | None = None
    max_renders_per_campaign_per_day: int | None = None
    max_seconds_per_campaign_per_day: float | None = None
    check_quota: bool = True
    quota_cache_seconds: float = 300.0

    catalogue_max_age_hours: float = 24.0
    # Our template id -> a HeyGen template (v2 Template API) that renders videos using it.
    templates: dict[str, TemplateLink] = Field(default_factory=dict)
