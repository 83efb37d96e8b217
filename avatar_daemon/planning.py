"""Planning a video without effects: parse, detect the source, extract, choose, write the script.

Functions of the catalogue and the payload, nothing that runs or is stored, so the inbox,
the HTTP API and the command line's dry run plan alike (the CLI calls them directly).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .catalogue import Catalogue
from .errors import InvalidRequest, RenderError, ResearchError, UnknownNameError, first_problem
from .hookspecs import ChecksPhotos, DrawsLogos, ResearchSource
from .job_files import job_folder
from .media import MediaResolver
from .models import (
    Background, CaptionLook, Hashtags, MediaFile, RenderRequest, Research, Script, VideoDescription,
    VideoText, VideoTitle,
)
from .registry import Registry
from .decoding import parse
from .parts import fitted
from .spoken import estimate_seconds, to_spoken

log = logging.getLogger(__name__)

SCRIPT_MAX_CHARS = 20_000
"""The longest script any interface takes, in characters: refused before it is cleaned or read aloud."""


class VideoOptions(BaseModel):
    """What a job keeps of a request besides its avatar, format, renderer and template.

    One model for envelopes, HTTP bodies, Slack forms and buttons, so a value one interface
    refuses is refused by all of them, before anything is queued.
    """

    model_config = ConfigDict(extra="forbid")

    voice_speed: float | None = Field(None, ge=0.5, le=1.5)
    captions: bool | None = None
    background: Background | None = None
    narration: MediaFile | None = None
    talking_photo: MediaFile | None = None
    brand_logo: MediaFile | None = None  # an upload, drawn in the brand corner

    def job_settings(self) -> dict[str, Any]:
        """What a job row keeps of these (the rest are columns): read back by request_for."""
        return self.model_dump(exclude_none=True, mode="json", include=set(VideoOptions.model_fields))


async def settled(catalogue: Catalogue, media: MediaResolver, options: VideoOptions, *, renderer: str, avatar: str,
                  remote: bool, workspace: str | None) -> dict[str, Any]:
    """A request's job settings with the media they name found, fetched and checked, and the photo that
    will talk shown to its renderer: every way in alike."""
    settings = await media.settle(options.job_settings(), remote=remote, workspace=workspace)
    await check_photo(catalogue, media, settings, renderer, avatar)
    return settings


async def check_photo(catalogue: Catalogue, media: MediaResolver, settings: dict[str, Any], renderer: str,
                      avatar: str) -> None:
    """The request's own photo, else a talking-photo profile's, refused at the door when the renderer
    cannot animate it (no face in it, a part not installed), with its reason, instead of failing the job."""
    r = catalogue.renderers[renderer]
    if not isinstance(r, ChecksPhotos):
        return
    own = (settings.get("media") or {}).get("talking_photo")
    if not own:
        return await check_profile_photo(catalogue, renderer, avatar)
    given = settings["talking_photo"]  # named as the caller named it: by asset_id, path or url
    field = next((f"talking_photo.{k}" for k in ("asset_id", "path", "url") if given.get(k)), "talking_photo")
    try:
        await asyncio.to_thread(r.check_photo, media.file(own), None)
    except RenderError as exc:
        raise InvalidRequest(field, str(exc)) from None


async def check_profile_photo(catalogue: Catalogue, renderer: str, avatar: str) -> None:
    """A talking-photo profile's own photo, as `check_photo` checks it; also before each campaign run,
    since the file can change or go after the campaign was accepted."""
    r = catalogue.renderers.get(renderer)  # not loaded: the job's own failure will say so
    if not isinstance(r, ChecksPhotos):
        return
    profile = catalogue.avatar(avatar)
    if profile.avatar_type != "talking_photo" or not profile.photo:
        return  # a profile without a photo is the renderer's to refuse (a remote look needs none)
    try:
        await asyncio.to_thread(r.check_photo, Path(profile.photo), profile.mouth)
    except RenderError as exc:
        raise InvalidRequest("avatar", f"profile {profile.id!r}: {exc}") from None


class VideoSettings(VideoOptions):
    """The `request` part of an envelope: which videos to make of this research."""

    formats: list[str] | None = None
    avatar: str | None = None
    renderer: str | None = None
    template: str | None = None
    title: VideoTitle | None = None
    description: VideoDescription | None = None
    hashtags: Hashtags | None = None
    writer: str | None = None
    workspace: str | None = None
    user: str | None = None
    split: bool | None = Field(None, description="a script too long for a format becomes several videos (Part 1 "
                                                 "of N), split between sentences, instead of being refused")

    def text(self) -> VideoText:
        return VideoText(title=self.title, description=self.description, hashtags=self.hashtags)


class Envelope(BaseModel):
    source: str | None = None
    request: VideoSettings = Field(default_factory=VideoSettings)
    research: Any


@dataclass
class Limits:
    max_seconds: float
    voice_speed: float
    language: str = "en"  # the voice's: text in another script is left out of the narration


@dataclass
class Prepared:
    research: Research
    settings: VideoSettings
    formats: list[str]
    avatar: str
    renderer: str
    script: Script
    videos: list[tuple[str, Script]]
    """(format, script) per video: one per format, or a split script's parts."""


def unwrap(payload: Any, name: str) -> tuple[Any, str | None, VideoSettings]:
    if isinstance(payload, dict) and "research" in payload and set(payload) <= {"source", "request", "research"}:
        try:
            env = Envelope.model_validate(payload)
        except ValidationError as exc:
            where, reason = first_problem(exc)
            raise ResearchError(f"{name}: request envelope field {where}: {reason}") from None
        return env.research, env.source, env.request
    return payload, None, VideoSettings()

def detect(sources: Registry[ResearchSource], payload: Any, name: str, explicit: str | None) -> str:
    if explicit:
        if explicit not in sources:
            raise ResearchError(f"{name}: the envelope names source {explicit!r}, which no plugin provides "
                                f"(known: {', '.join(sorted(sources.names()))})")
        return explicit
    scores = []
    for source in sources:
        try:
            scores.append((float(source.detect(payload, name)), source.name))
        except Exception as exc:  # one confused detector must not hide the others
            log.warning("source %r failed to score %s: %s", source.name, name, exc)
    best = max(scores, default=(0.0, ""))
    if best[0] <= 0:
        kind = type(payload).__name__ if not hasattr(payload, "tag") else f"XML <{payload.tag}>"
        raise ResearchError(f"{name}: no source recognises this {kind}: it is not Reddit, Hacker News, "
                            "GitHub, Google Trends or research-job data")
    return best[1]

def extract(catalogue: Catalogue, data: bytes, name: str, suffix: str) -> tuple[Research, VideoSettings]:
    payload, explicit, settings = unwrap(parse(data, name, suffix), name)
    source = detect(catalogue.sources, payload, name, explicit)
    try:
        research = catalogue.sources[source].extract(payload)
    except ResearchError as exc:
        raise ResearchError(f"{name}: {source}: {exc}") from None
    except Exception as exc:  # a plugin surprised by a shape it half-recognised: the file's fault, said so
        raise ResearchError(f"{name}: looked like {source} data but could not be read: "
                            f"{type(exc).__name__}: {exc}") from None
    if not research.insights and not research.script_text:
        raise ResearchError(f"{name}: {source}: nothing usable: no insights after dropping deleted, "
                            "removed and empty items")
    return research, settings

def write_script(catalogue: Catalogue, research: Research, formats: list[str], voice_speed: float | None,
                 writer: str | None = None) -> Script:
    """Blocking: a writer may wait on the network (the LLM writer). Call it in a worker thread."""
    fmt = min((catalogue.formats[f] for f in formats), key=lambda f: f.max_seconds)
    speed = voice_speed or fmt.voice_speed
    if research.script_text is not None:
        text = spoken_script(research.script_text)
        return Script(title=research.title, text=text, estimated_seconds=estimate_seconds(text, speed))
    templates = catalogue.settings.script_templates
    template = templates.get(research.source) or templates.get("default")
    chosen = catalogue.script_writer(writer or (template.writer if template else None))
    return chosen.write(research, research.source, Limits(max_seconds=fmt.max_seconds, voice_speed=speed))

async def awrite_script(catalogue: Catalogue, research: Research, formats: list[str], voice_speed: float | None,
                        writer: str | None = None) -> Script:
    """write_script from the event loop, without stalling it while a writer waits."""
    return await asyncio.to_thread(write_script, catalogue, research, formats, voice_speed, writer)

def spoken_script(script: str) -> str:
    """A script as it will be read, refused at intake when it cannot be.

    The character cap every interface shares comes first, so a 20 MB text file is refused
    before it is cleaned; its length against each format is videos_of's to judge.
    """
    if len(script) > SCRIPT_MAX_CHARS:
        raise ResearchError(f"the script is {len(script):,} characters; the limit is {SCRIPT_MAX_CHARS:,}")
    text = to_spoken(script)
    if not text:
        raise ResearchError("the script has no words to speak")
    return text


def videos_of(catalogue: Catalogue, script: Script, formats: list[str], voice_speed: float | None,
              split: bool | None) -> list[tuple[str, Script]]:
    """(format, script) per video to make: the script itself where it fits the format, else its parts
    (`split`), else ResearchError with the format's limit (parts.fitted). Every interface asks here."""
    return [(f, part) for f in formats
            for part in fitted(script, catalogue.formats[f], voice_speed, bool(split))]


def job_request(settings: dict[str, Any], script: Script, own_script: bool = False) -> dict[str, Any]:
    """A job's settings, with its own script when it has one: a part's (its research keeps the whole
    script), or a re-told research's (`own_script`)."""
    return {**settings, "script": script.model_dump(mode="json")} if script.part or own_script else settings

def plan(catalogue: Catalogue, settings: VideoSettings) -> tuple[list[str], str, str]:
    """(formats, avatar, renderer) of a request, its own else the defaults; UnknownNameError naming the known ones."""
    c = catalogue
    formats = settings.formats or c.settings.default_formats
    for f in formats:
        c.formats[f]
    avatar = settings.avatar or c.settings.default_avatar
    c.avatar(avatar)
    renderer = settings.renderer or c.settings.default_renderer
    c.renderers[renderer]
    check_logo(c, renderer, settings.brand_logo is not None)
    return formats, avatar, renderer

def check_logo(catalogue: Catalogue, renderer: str, wanted: bool) -> None:
    """A request's own logo only for a renderer that draws one: refused at the door, not dropped from the video."""
    if wanted and not isinstance(catalogue.renderers[renderer], DrawsLogos):
        able = [r.name for r in catalogue.renderers if isinstance(r, DrawsLogos)]
        raise InvalidRequest("brand_logo", f"renderer {renderer!r} cannot put a logo on its videos (its service "
                                           "has no image overlay); make the video with "
                                           f"{' or '.join(repr(a) for a in able) or 'another renderer'}, "
                                           "or leave the logo out")

def prepare(catalogue: Catalogue, data: bytes, name: str, suffix: str, overrides: VideoSettings | None = None) -> Prepared:
    """Everything short of the store: parse, detect, extract, choose and write the script.

    Pure CPU work on the payload, so Pipeline.ingest runs it in a thread and a 20 MB file never
    stalls the event loop (and with it the HTTP server and every running job's progress).
    """
    research, settings = extract(catalogue, data, name, suffix)
    if overrides:
        # validated, not copied: a nested override (background) must become its model again
        settings = VideoSettings.model_validate({**settings.model_dump(exclude_none=True),
                                                 **overrides.model_dump(exclude_none=True)})
    try:
        formats, avatar, renderer = plan(catalogue, settings)
        script = write_script(catalogue, research, formats, settings.voice_speed, settings.writer)
        script = with_text(catalogue, script, settings.template, settings.text())
        videos = videos_of(catalogue, script, formats, settings.voice_speed, settings.split)
    except (UnknownNameError, ResearchError) as exc:
        raise ResearchError(f"{name}: {exc}") from None
    return Prepared(research, settings, formats, avatar, renderer, script, videos)


def with_text(catalogue: Catalogue, script: Script, template_id: str | None, *over: VideoText | None) -> Script:
    """The video's title, description and hashtags: request > campaign > template > research.

    The callers pass the layers above the template, lowest first; one rule for every way in.
    """
    template = catalogue.settings.templates.get(template_id or catalogue.settings.default_template or "")
    for layer in (template.metadata if template else None, *over):
        if layer is not None:
            script = layer.over(script)
    return script


def request_for(catalogue: Catalogue, media: MediaResolver, job_id: int, script: Script, avatar_id: str,
                format_name: str, template_id: str | None, settings: dict[str, Any], external_id: str | None = None,
                campaign_id: int | None = None, research: Research | None = None) -> RenderRequest:
    """A job's settings over its template's over the format's: one rule for jobs and dry runs."""
    c = catalogue
    fmt = c.formats[format_name]
    template = c.settings.templates.get(template_id or "")
    return RenderRequest(
        job_id=job_id,
        script=script,
        avatar=c.avatar(avatar_id),
        format=fmt,
        voice_speed=settings.get("voice_speed") or fmt.voice_speed,
        captions=settings.get("captions", template.captions if template else True),
        title_card=template.title_card if template else True,
        **media.for_render(settings, template),  # local files the core checked, never a URL
        output_dir=job_folder(c.settings.jobs.output_dir, job_id),
        external_id=external_id,
        campaign_id=campaign_id,
        template_id=template_id,
        research=research,
        cards=settings.get("cards", template.cards if template else True),
        caption_look=CaptionLook.model_validate(settings.get("caption_look") or (
            template.caption_look.model_dump() if template else {})),
    )
