"""HeyGen's answers: typed replies that tolerate unknown fields, and one error type for three envelopes.

HeyGen answers in three shapes (v1 `{"code": 100, "data", "message"}`, v2
`{"error": null|{code, message}, "data"}`, v3 `{"error": {code, message, param}}` or
`{"data", "has_more", "next_token"}`); `unwrap` turns any of them into `data` or a
`HeyGenError` carrying HeyGen's own code and message, which is what a user can act on.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from avatar_daemon import RenderError


class Loose(BaseModel):
    """HeyGen adds fields over time; we keep what we do not know, and accept field names or aliases."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class HeyGenError(RenderError):
    """A refusal from HeyGen (or no answer at all) with its HTTP status and HeyGen's own code."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        self.status, self.code, self.detail, self.retry_after = status, code, message, retry_after
        super().__init__(f"HeyGen refused the request (HTTP {status}, {code}): {message}" if status else message)

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500 or self.status == 0 or self.code == "request_in_progress"


class VideoCreated(Loose):
    video_id: str
    status: str | None = None


class VideoError(Loose):
    code: str | int | None = None
    message: str | None = None
    detail: str | None = None


class Video(Loose):
    """`GET /v3/videos/{id}`; also reads the v1 status names so either answer works."""

    video_id: str | None = Field(None, alias="id")
    status: str = "pending"
    video_url: str | None = None
    captioned_video_url: str | None = Field(None, alias="video_url_caption")
    subtitle_url: str | None = Field(None, alias="caption_url")
    thumbnail_url: str | None = None
    duration: float | None = None
    failure_code: str | int | None = None
    failure_message: str | None = None
    callback_id: str | None = None
    progress: float | None = None
    error: VideoError | str | None = None

    def failure(self) -> str:
        err = self.error
        if isinstance(err, VideoError):
            code, text = err.code, err.detail or err.message
        else:
            code, text = self.failure_code, err
        text = self.failure_message or text or "no reason given"
        return f"HeyGen could not render video {self.video_id} ({code or 'no code'}): {text}"


class AvatarLook(Loose):
    id: str
    name: str = ""
    avatar_type: str | None = None
    gender: str | None = None
    preview_image_url: str | None = None
    preview_video_url: str | None = None
    default_voice_id: str | None = None
    supported_api_engines: list[str] = Field(default_factory=list)


class Voice(Loose):
    voice_id: str
    name: str = ""
    language: str | None = None
    gender: str | None = None
    preview_audio_url: str | None = Field(None, alias="preview_audio")


class Quota(Loose):
    remaining_quota: float = 0

    @property
    def credits(self) -> float:
        return self.remaining_quota / 60  # "divide the number of quota by 60"


class WebhookEndpoint(Loose):
    endpoint_id: str
    url: str
    events: list[str] | None = None
    status: str | None = None
    secret: str | None = None

    def __repr__(self) -> str:  # the secret never reaches a log line through a repr
        return f"WebhookEndpoint(endpoint_id={self.endpoint_id!r}, url={self.url!r})"

    __str__ = __repr__


class Asset(Loose):
    id: str
    url: str | None = None
    file_type: str | None = None


class V3Asset(Loose):
    """`POST /v3/assets`: the id a v3 video names the file by (`{"type": "asset_id", ...}`)."""

    asset_id: str
    url: str | None = None
    mime_type: str | None = None
    size_bytes: int | None = None


def unwrap(status: int, body: Any, retry_after: float | None = None) -> Any:
    """`data` from any of HeyGen's envelopes, or HeyGenError with the most specific code and message."""
    if not isinstance(body, dict):
        if 200 <= status < 300:
            return body
        raise HeyGenError(status, f"http_{status}", str(body)[:300] or "empty answer", retry_after)
    error = body.get("error")
    code = body.get("code")
    ok_envelope = not error and (code is None or code == 100)
    if 200 <= status < 300 and ok_envelope:
        if "has_more" in body or "next_token" in body:  # v3 lists keep the cursor beside `data`
            return {"items": body.get("data") or [], "next_token": body.get("next_token") if body.get("has_more",
                                                                                                    True) else None}
        return body.get("data")
    if isinstance(error, dict):
        raise HeyGenError(status, str(error.get("code") or f"http_{status}"),
                           str(error.get("message") or error.get("detail") or "no message"), retry_after)
    if isinstance(error, str) and error:
        raise HeyGenError(status, f"http_{status}", error, retry_after)
    message = body.get("message") or body.get("msg") or f"HTTP {status}"
    raise HeyGenError(status, str(code if code not in (None, 100) else f"http_{status}"), str(message), retry_after)
