"""The Instagram publisher's settings (daemon.yaml `plugins.settings.instagram`); tokens are the account's secrets."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class InstagramSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Resumable uploads need Facebook Login for Business, so the Graph host is graph.facebook.com.
    graph_url: str = "https://graph.facebook.com"
    rupload_url: str = "https://rupload.facebook.com"
    api_version: str = Field("v25.0", pattern=r"^v\d+\.\d+$")
    request_timeout_seconds: float = Field(60.0, gt=0)
    upload_timeout_seconds: float = Field(1800.0, gt=0)
    share_to_feed: bool = True
    # Waiting for the container to finish processing: Meta suggests about once a minute; start sooner.
    poll_first_seconds: float = Field(10.0, ge=0)
    poll_factor: float = Field(1.5, ge=1.0)
    poll_max_interval_seconds: float = Field(60.0, gt=0)
    # Past this the attempt ends with "try again later"; the next one asks for the saved container.
    processing_deadline_seconds: float = Field(900.0, gt=0)
    # How far ahead a publication waits when the rolling 24-hour publishing limit is used up, or Graph's
    # call-rate limits answer (they count over a rolling hour).
    quota_wait_seconds: float = Field(3600.0, gt=0)
