"""Pydantic models that cross a boundary: research, scripts, render requests and job events."""

from __future__ import annotations

import enum
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, WrapValidator, field_validator, model_validator,
)
from pydantic_core import PydanticCustomError

from .spoken import strip_invisible

VisibleStr = Annotated[str, AfterValidator(strip_invisible)]
"""Research text from any source, ours or a third party's: no controls, escapes, bidi or zero-width tricks."""


JSON_BODY = {"json_body": True}
"""The validation context of an HTTP request body (web.common.validated): Flag fields are strict there."""


def _flag(value: Any, handler: Any, info: ValidationInfo) -> bool:
    if isinstance(info.context, dict) and info.context.get("json_body") and not isinstance(value, bool):
        raise PydanticCustomError("bool_type", "Input should be a JSON boolean, true or false")
    return handler(value)


Flag = Annotated[bool, WrapValidator(_flag)]
"""A yes/no field shared by files and HTTP bodies. A JSON client states booleans as true or false, so
"yes" or 1 in a body is a mistake to name, not a True to guess; a YAML file keeps YAML's own
booleans (yes/no/on/off arrive as bools from safe_load), as does an inbox envelope."""


Tier = Literal["free", "pro", "enterprise"]
"""Account tiers, lowest first: an avatar needs a tier, a user or workspace has one."""


class Strict(BaseModel):
    """Every file and request model: an unknown field is a mistake to name, not something to ignore."""

    # No inf or nan: JSON (the store, the API) cannot carry them, and they make every comparison moot.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Insight(BaseModel):
    """One ranked finding; `score` is the source's own signal (points, stars, traffic)."""

    model_config = ConfigDict(validate_assignment=True)  # a field set later is cleaned too

    text: VisibleStr
    score: float | None = None
    url: VisibleStr | None = None
    detail: VisibleStr | None = None
    created_at: datetime | None = None
    # The source's own fields a research card shows (comments, language, a chart's series), as saved.
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("meta", mode="after")
    @classmethod
    def _visible_meta(cls, meta: dict[str, Any]) -> dict[str, Any]:
        return _visible(meta)


class Research(BaseModel):
    """What a source extracted from one payload, ranked best first."""

    model_config = ConfigDict(validate_assignment=True)

    source: VisibleStr
    title: VisibleStr
    topic: VisibleStr
    insights: list[Insight]
    # A ready script (plain .txt/.md drops) bypasses the template writer.
    script_text: VisibleStr | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("meta", mode="after")
    @classmethod
    def _visible_meta(cls, meta: dict[str, Any]) -> dict[str, Any]:
        return _visible(meta)


def _visible(value: Any) -> Any:
    """Strings anywhere in a plugin's free-form `meta`, cleaned like the text fields."""
    if isinstance(value, str):
        return strip_invisible(value)
    if isinstance(value, dict):
        return {_visible(k): _visible(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_visible(v) for v in value]
    return value


class Part(BaseModel):
    """One of the videos a script too long for its format was split into, between sentences."""

    number: int = Field(ge=1)
    of: int = Field(ge=2)
    series: str  # the same for every part of one split: how the parts find each other


class Script(BaseModel):
    """Narration ready to speak: paragraphs are separated by blank lines, which become pauses."""

    title: str
    text: str
    estimated_seconds: float
    insights_used: int = 0
    # For the video's page (metadata.json, publishing): the insights with their source links.
    description: str = ""
    hashtags: list[str] = Field(default_factory=list)
    # What the writer left out or fell back on, and why: the job's report shows these.
    notes: list[str] = Field(default_factory=list)
    writer: str = ""
    part: Part | None = None

    @property
    def paragraphs(self) -> list[str]:
        return [p.strip() for p in self.text.split("\n\n") if p.strip()]


TITLE_MAX_CHARS = 200
DESCRIPTION_MAX_CHARS = 5_000
MAX_HASHTAGS = 10


def _words(v: str) -> str:
    if not v.strip():
        raise PydanticCustomError("blank", "is only spaces")
    return v.strip()


VideoTitle = Annotated[str, Field(min_length=1, max_length=TITLE_MAX_CHARS), AfterValidator(_words)]
VideoDescription = Annotated[str, Field(min_length=1, max_length=DESCRIPTION_MAX_CHARS,
                                        description="the video's page text: what it covers, with links"),
                             AfterValidator(_words)]
def _hashtag(v: str) -> str:
    if not re.fullmatch(r"#?\w{1,50}", v):
        raise PydanticCustomError("hashtag", "{value} is not a hashtag: one word of letters, digits and _ "
                                  "(at most 50), with or without its #", {"value": repr(v[:60])})
    return v


Hashtags = Annotated[list[Annotated[str, AfterValidator(_hashtag)]],
                     Field(max_length=MAX_HASHTAGS, description="words, with or without their #; [] for none")]


class VideoText(BaseModel):
    """A video's title, description and hashtags as a person set them, over the ones built from the research.

    One set of types for a template's, a campaign's and a request's, so every interface shares the
    limits (and a publishing plugin never meets a 10,000-character title).
    """

    model_config = ConfigDict(extra="forbid")

    title: VideoTitle | None = None
    description: VideoDescription | None = None
    hashtags: Hashtags | None = None

    def over(self, script: "Script") -> "Script":
        """The script with what is set here in place of the writer's (an empty hashtag list clears them)."""
        own: dict[str, Any] = {k: v for k, v in (("title", self.title), ("description", self.description))
                               if v is not None}
        if self.hashtags is not None:
            own["hashtags"] = list(dict.fromkeys("#" + t.lstrip("#") for t in self.hashtags))
        return script.model_copy(update=own) if own else script


class CaptionStyle(str, enum.Enum):
    karaoke = "karaoke"      # large centred phrase, spoken word highlighted (short-form)
    subtitles = "subtitles"  # two lines at the bottom (landscape)
    none = "none"


class FormatSpec(BaseModel):
    """An output preset; plugins register these through `register_formats`."""

    model_config = ConfigDict(frozen=True)

    name: str
    label: str
    width: int
    height: int
    fps: int = 30
    voice_speed: float = 1.0
    caption_style: CaptionStyle = CaptionStyle.karaoke
    max_seconds: float = 60.0
    deliverables: tuple[str, ...] = ("mp4", "srt", "vtt", "thumbnail", "metadata")

    @property
    def aspect_ratio(self) -> str:
        from math import gcd

        g = gcd(self.width, self.height)
        return f"{self.width // g}:{self.height // g}"

    @property
    def orientation(self) -> Literal["portrait", "landscape", "square"]:
        if self.width == self.height:
            return "square"
        return "portrait" if self.height > self.width else "landscape"


class MouthPlace(BaseModel):
    """Where a talking photo's mouth is, in the photo's own pixels: for a face the detector misses
    or places badly (a profile view, a drawing, a beard that hides the lips)."""

    model_config = ConfigDict(extra="forbid")

    x: int = Field(ge=0, description="the mouth's centre, pixels from the photo's left edge")
    y: int = Field(ge=0, description="the mouth's centre (where the lips meet), pixels from the photo's top edge")
    width: int = Field(gt=0, description="from one corner of the mouth to the other, in pixels")


Engine = Literal["avatar_iv", "avatar_v"]
Expressiveness = Literal["low", "medium", "high"]


class Motion(BaseModel):
    """How a remote renderer animates a presenter (HeyGen v3's names), set by a profile or a template.

    Avatar IV is the default and the only engine that animates a plain image; Avatar V exists
    only for some looks and takes no `expressiveness`. `expressiveness` and `motion_prompt` move
    photos only (a photo-avatar look or an uploaded portrait)."""

    engine: Engine | None = Field(None, description="avatar_iv (the default) or avatar_v (only for looks that "
                                                    "list it in HeyGen's supported_api_engines)")
    expressiveness: Expressiveness | None = Field(None, description="talking photos: how much the face and "
                                                                    "body move (HeyGen's default: low)")
    motion_prompt: str | None = Field(None, min_length=1, max_length=1000,
                                      description="talking photos: body motion in words, e.g. 'nods slowly'")

    @model_validator(mode="after")
    def _engine_takes_it(self) -> "Motion":
        if self.engine == "avatar_v" and self.expressiveness:
            raise ValueError("engine avatar_v takes no expressiveness (an Avatar IV setting): drop one of them")
        return self


class AvatarProfile(Motion):
    """A presenter users can pick; `renderer_ids` maps renderer name to its own avatar id.

    A `talking_photo` profile is a portrait that speaks: HeyGen renders its photo-avatar look
    (`renderer_ids`), or uploads `photo` and animates it as an image when there is no look;
    the local renderer animates `photo` (a file in the assets folder)."""

    id: str
    avatar_type: Literal["avatar", "talking_photo"] = "avatar"
    photo: str | None = None
    mouth: MouthPlace | None = None
    name: str
    tier: Tier = "free"
    gender: Literal["female", "male"] = "female"
    age_range: str = "25-35"
    style: str = "professional"
    voice: str = "en-us-female"
    skin: str = "#e0ac89"
    hair: str = "#3b2a1e"
    hair_style: str = "short"
    outfit: str = "#1e3a5f"
    accent: str = "#ffffff"
    glasses: bool = False
    beard: bool = False
    renderer_ids: dict[str, str] = Field(default_factory=dict)
    voice_ids: dict[str, str] = Field(default_factory=dict)
    description: str = ""
    # Filled from a renderer's catalogue (e.g. HeyGen's look previews) for pickers and the API.
    preview_image_url: str | None = None
    preview_video_url: str | None = None

    @model_validator(mode="after")
    def _photo_fields(self) -> "AvatarProfile":
        if self.avatar_type == "avatar":
            given = [n for n in ("photo", "mouth", "expressiveness", "motion_prompt") if getattr(self, n)]
            if given:
                raise ValueError(f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} for avatar_type "
                                 f"talking_photo; avatar profile {self.id!r} is an avatar")
        elif not self.photo and not self.renderer_ids:
            raise ValueError(f"talking-photo profile {self.id!r} needs a photo (a file in the assets folder) or a "
                             "renderer's photo look in renderer_ids")
        return self


HEX_COLOUR = r"^#[0-9a-fA-F]{6}$"
Colour = Annotated[str, Field(pattern=HEX_COLOUR, description="a colour as #rrggbb")]
MediaUrl = Annotated[str, Field(max_length=2048, pattern=r"^[A-Za-z][A-Za-z0-9+.-]*://",
                                description="fetched by the daemon when the request arrives: https, a public "
                                            "address, a size and time limit, and bytes that really are the kind "
                                            "of media named")]
LocalPath = Annotated[str, Field(min_length=1, max_length=4096,
                                 description="trusted local callers only (the CLI, inbox files, templates): a "
                                             "file in the assets folder or the inbox; refused from any remote "
                                             "caller")]


AssetId = Annotated[str, Field(pattern=r"^as_[0-9a-f]{24}$",
                               description="an upload's id (POST /assets), of the caller's own workspace")]


class _OneSource(BaseModel):
    """Where a media file comes from: exactly one of the sources a model has (url, asset_id, path)."""

    model_config = ConfigDict(extra="forbid")

    def sources(self) -> list[str]:
        return [n for n in ("url", "asset_id", "path") if getattr(self, n, None)]


class PublicMedia(_OneSource):
    """A file for the render (narration audio, a talking photo) as a remote caller may name it: by URL or upload."""

    url: MediaUrl | None = None
    asset_id: AssetId | None = None

    @model_validator(mode="after")
    def _one(self) -> "PublicMedia":
        if len(self.sources()) != 1:
            raise ValueError("give a url or an asset_id, not both or neither")
        return self


class MediaFile(_OneSource):
    """A file for the render as any caller may name it; `path` is for trusted local callers only."""

    url: MediaUrl | None = None
    asset_id: AssetId | None = None
    path: LocalPath | None = None

    @model_validator(mode="after")
    def _one(self) -> "MediaFile":
        if len(self.sources()) != 1:
            raise ValueError("give a url or an asset_id (or, for local callers, a path), not several or none")
        return self


class PublicBackground(_OneSource):
    """Colour, gradient, image or looping video behind the presenter, as a remote caller may give it.

    An image or video comes from `url`; a colour or gradient takes none.
    """

    type: Literal["color", "gradient", "image", "video"] = "gradient"
    value: Colour = "#0f172a"
    value2: Colour = Field("#1e3a8a", description="a gradient's bottom colour")
    url: MediaUrl | None = None
    asset_id: AssetId | None = None

    @model_validator(mode="after")
    def _source(self) -> "PublicBackground":
        given, kind = self.sources(), f"{'an' if self.type == 'image' else 'a'} {self.type} background"
        if self.type in ("image", "video") and len(given) != 1:
            offered = " or ".join(n for n in ("url", "asset_id", "path") if n in type(self).model_fields)
            raise ValueError(f"{kind} needs a {offered}" if not given else f"{kind} takes one of {offered}, "
                                                                          f"not {' and '.join(given)}")
        if self.type in ("color", "gradient") and given:
            raise ValueError(f"{kind} takes no {given[0]}")
        return self


class Background(PublicBackground):
    """A background as the core and renderers see it: `path` is a trusted caller's file, or the local file
    the core resolved (renderers read only `path`; a URL was fetched before the job was queued)."""

    path: LocalPath | None = None


class Brand(BaseModel):
    """Series look: a logo in a corner, colours and the caption font (from templates.yaml: trusted)."""

    model_config = ConfigDict(extra="forbid")

    logo: LocalPath | None = None
    logo_corner: Literal["top-left", "top-right", "bottom-left", "bottom-right"] = "top-right"
    primary: Colour = "#facc15"
    text: Colour = "#ffffff"
    font: str | None = None


class CaptionLook(BaseModel):
    """How burnt-in captions look; unset colours come from the brand, an unset position from the format."""

    position: Literal["top", "middle", "bottom", "above_card"] | None = None
    size: float = Field(1.0, ge=0.5, le=2.0)          # times the format's caption size
    colour: str | None = Field(None, pattern=r"^#[0-9a-fA-F]{6}$")
    active_colour: str | None = Field(None, pattern=r"^#[0-9a-fA-F]{6}$")
    active: Literal["colour", "box", "scale"] = "colour"  # how the word being spoken stands out
    upper: bool = False
    words_per_line: int | None = Field(None, ge=1, le=12)


class VideoTemplate(Motion):
    """A video template from config/templates.yaml; its engine, expressiveness and motion_prompt
    override the avatar profile's."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    format: str
    background: Background = Field(default_factory=Background)
    brand: Brand = Field(default_factory=Brand)
    captions: bool = True
    title_card: bool = True
    cards: bool = True  # research cards on screen while their insight is spoken
    music: str | None = None  # a music bed (a path the template's author gives), ducked under the voice
    caption_look: CaptionLook = Field(default_factory=CaptionLook)
    metadata: VideoText = Field(default_factory=VideoText,
                                description="title, description and hashtags of its videos, over the research's")
    publish: PublishOptions | None = Field(None, description="how its videos are posted (privacy, made_for_kids, "
                                                             "category), under a campaign's and a request's")

    @model_validator(mode="after")
    def _files_only(self) -> "VideoTemplate":
        # Templates are read at start and used by every job, so their media are files in the assets
        # folder: a URL would be fetched again and again, or fail a render long after the request.
        if self.background.url or self.background.asset_id:
            raise ValueError("a template's image or video background is a path in the assets folder, not a url "
                             "or an upload")
        return self


class RenderRequest(BaseModel):
    """Everything a renderer needs for one video; built by the job runner from the job row."""

    job_id: int
    script: Script
    avatar: AvatarProfile
    format: FormatSpec
    voice_speed: float = Field(1.0, ge=0.5, le=1.5)
    captions: bool = True
    title_card: bool = True
    background: Background = Field(default_factory=Background)
    brand: Brand = Field(default_factory=Brand)
    narration: Path | None = None
    talking_photo: Path | None = None
    output_dir: Path
    # The remote render(s) already created for this job, comma-separated: resume, never resubmit.
    external_id: str | None = None
    # How many times a person has retried this job (0 on its first try; a restart is not a retry).
    # A retry is a new try: a remote renderer keys its creates on it, so a remote render that
    # failed is made again instead of being answered with the old failure.
    retry: int = 0
    campaign_id: int | None = None
    template_id: str | None = None
    # The research the script was written from, for on-screen cards; None for plain scripts.
    research: Research | None = None
    cards: bool = True
    music: Path | None = None
    caption_look: CaptionLook = Field(default_factory=CaptionLook)


class RenderResult(BaseModel):
    video: Path | None = None
    thumbnail: Path | None = None
    srt: Path | None = None
    vtt: Path | None = None
    metadata: Path | None = None
    duration: float | None = None
    external_id: str | None = None
    video_url: str | None = None


class RemoteWait(BaseModel):
    """A remote render not finished yet (see hookspecs.WaitsRemotely): when to look again, and how far it is."""

    check_in: float = Field(ge=0)  # seconds
    percent: float | None = None
    message: str = ""


class JobState(str, enum.Enum):
    queued = "queued"
    # Before a paid, remote create call: a crash from here on resubmits with the same
    # idempotency key instead of creating (and paying for) a second video.
    submitting = "submitting"
    rendering = "rendering"
    # Submitted to a remote renderer that works for long (HeyGen): the job holds no slot and no
    # node until its next check, which any node may make.
    waiting_remote = "waiting_remote"
    completed = "completed"
    failed = "failed"
    timeout = "timeout"
    cancelled = "cancelled"

    @property
    def final(self) -> bool:
        return self in (JobState.completed, JobState.failed, JobState.timeout, JobState.cancelled)


class JobEvent(BaseModel):
    """A state change of a job, persisted and published to notifiers and subscribers."""

    job_id: int
    state: JobState
    percent: float | None = None
    message: str = ""
    at: datetime = Field(default_factory=utcnow)
    data: dict[str, Any] = Field(default_factory=dict)
    node_id: str | None = None  # the daemon that published it, among several sharing one database
    publication: dict[str, Any] | None = None
    """Set on a publication's event (progress, published, failed; ``Publication.public()``): the job
    itself did not change, so consumers of job states skip these or read them as posts."""


class Notice(BaseModel):
    """Something that is not a job's state change but people should hear of: a campaign ran, a file is invalid."""

    kind: str                     # campaign.run, campaign.invalid, campaign.error, publish.missing
    message: str
    at: datetime = Field(default_factory=utcnow)
    data: dict[str, Any] = Field(default_factory=dict)


Privacy = Literal["private", "unlisted", "public"]


class PublishOptions(Strict):
    """How a video is posted: per campaign, template and request (the request wins).

    Private by default: the platforms keep posts of apps they have not audited private anyway.
    """

    privacy: Privacy = "private"
    made_for_kids: Flag = False
    category: str | None = None
    """A platform's category id (YouTube's ``categoryId``, e.g. "28" for Science & Technology)."""
    notify_subscribers: Flag = False
    extra: dict[str, Any] = Field(default_factory=dict)
    """Platform-specific options a publisher documents (TikTok's ``mode: inbox``...)."""


class PublishVideo(BaseModel):
    """The finished video a publisher posts: its file and its text (title > campaign > template > research)."""

    job_id: int
    path: Path
    size: int
    mime: str = "video/mp4"
    format: str
    width: int
    height: int
    duration: float
    title: str
    description: str = ""
    hashtags: list[str] = Field(default_factory=list)
    thumbnail: Path | None = None

    @property
    def is_short(self) -> bool:
        """YouTube's rule (there is no API flag): vertical or square, and three minutes or less."""
        return self.height >= self.width and self.duration <= 180


class Posted(BaseModel):
    """A post the platform has published."""

    remote_id: str
    url: str | None = None


class Figures(BaseModel):
    """A post's counts as the platform reports them now."""

    views: int = 0
    likes: int = 0
    comments: int = 0


VideoTemplate.model_rebuild()
