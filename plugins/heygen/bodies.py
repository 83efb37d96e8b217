"""What we send HeyGen, as typed models: a plan that breaks a documented limit fails here, before any call.

Each model is dumped without its unset fields (`wire()`), which is exactly what goes on
the wire and what `render --dry-run` prints.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class Background(Body):
    type: Literal["color", "image", "video"]
    value: str | None = None                   # colour
    url: str | None = None                     # image or video
    play_style: Literal["fit_to_scene", "freeze", "loop", "once", "full_video"] | None = None
    fit: Literal["cover", "crop", "contain", "none"] | None = None


class VoiceSettings(Body):
    speed: float = Field(1.0, ge=0.5, le=1.5)
    pitch: int = Field(0, ge=-50, le=50)
    locale: str | None = None


class Caption(Body):
    file_format: Literal["srt", "vtt"] = "srt"
    style: str | None = None                   # set: captions burned in as well


class AssetInput(Body):
    """v3's way to name a file: an uploaded asset (what we send: the same photo is reused by id) or a URL."""

    type: Literal["asset_id", "url"]
    asset_id: str | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _one(self) -> "AssetInput":
        if (self.type == "asset_id") != bool(self.asset_id) or (self.type == "url") != bool(self.url):
            raise ValueError(f"an {self.type} input names exactly its {self.type}")
        return self


class Engine(Body):
    type: Literal["avatar_iv", "avatar_v"]


class CreateVideo(Body):
    """POST /v3/videos: one video of an avatar look (`type: avatar`) or of any portrait (`type: image`)."""

    type: Literal["avatar", "image"] = "avatar"
    avatar_id: str | None = None
    image: AssetInput | None = None
    engine: Engine | None = None
    # Photo avatars and images only (Avatar IV): how much it moves, and how, in words.
    expressiveness: Literal["low", "medium", "high"] | None = None
    motion_prompt: str | None = Field(None, max_length=1000)
    title: str = Field(max_length=255)
    resolution: Literal["720p", "1080p", "4k"]
    aspect_ratio: Literal["16:9", "9:16"]
    background: Background
    callback_id: str
    caption: Caption
    output_format: Literal["mp4", "webm"] = "mp4"
    script: str = Field(min_length=1)
    voice_id: str
    voice_settings: VoiceSettings

    @model_validator(mode="after")
    def _subject(self) -> "CreateVideo":
        if (self.type == "avatar") != bool(self.avatar_id) or (self.type == "image") != bool(self.image):
            raise ValueError("type avatar names an avatar_id, type image an image (and not the other)")
        if self.engine and self.engine.type == "avatar_v" and (self.type == "image" or self.expressiveness):
            raise ValueError("Avatar V animates avatar looks only and takes no expressiveness")
        return self


class Dimension(Body):
    width: int = Field(gt=128, lt=4096)
    height: int = Field(gt=128, lt=4096)


class StudioCharacter(Body):
    type: Literal["avatar"] = "avatar"
    avatar_id: str
    avatar_style: Literal["normal", "circle", "closeUp"] = "normal"


class StudioVoice(Body):
    type: Literal["text"] = "text"
    voice_id: str
    input_text: str = Field(min_length=1)
    speed: float = Field(1.0, ge=0.5, le=1.5)
    pitch: int = Field(0, ge=-50, le=50)


class StudioScene(Body):
    character: StudioCharacter
    voice: StudioVoice
    background: Background


class StudioGenerate(Body):
    """POST /v2/video/generate: several scenes, any dimension, test mode."""

    title: str
    callback_id: str
    caption: bool
    dimension: Dimension
    video_inputs: list[StudioScene] = Field(min_length=1, max_length=50)
    test: bool | None = None


class TemplateText(Body):
    name: str
    type: Literal["text"] = "text"
    properties: dict[str, str]


class TemplateGenerate(Body):
    """POST /v2/template/{id}/generate: a HeyGen template with its text variables filled."""

    title: str
    callback_id: str
    caption: bool
    test: bool
    dimension: Dimension
    variables: dict[str, TemplateText]
