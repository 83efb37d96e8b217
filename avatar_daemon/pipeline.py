"""From a payload to queued video jobs: detect the source, extract, write the script, queue."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ResearchError, UnknownNameError
from .models import Background, JobEvent, JobState, MediaFile, Research, Script
from .payload import parse, read_file
from .requests import SCRIPT_MAX_CHARS
from .spoken import estimate_seconds, to_spoken, words_for_seconds
from .store import NewJob, while_busy

if TYPE_CHECKING:
    from .daemon import Daemon

log = logging.getLogger(__name__)


class VideoSettings(BaseModel):
    """The `request` part of an envelope: which videos to make of this research."""

    model_config = ConfigDict(extra="forbid")

    formats: list[str] | None = None
    avatar: str | None = None
    renderer: str | None = None
    template: str | None = None
    voice_speed: float | None = Field(None, ge=0.5, le=1.5)
    captions: bool | None = None
    background: Background | None = None
    narration: MediaFile | None = None
    talking_photo: MediaFile | None = None
    title: str | None = None
    description: str | None = None
    hashtags: list[str] | None = None
    writer: str | None = None
    workspace: str | None = None
    user: str | None = None

    def job_settings(self) -> dict[str, Any]:
        """What a job row keeps of these (the rest are columns): read back by JobRunner.request_for."""
        return self.model_dump(exclude_none=True, mode="json",
                               include={"voice_speed", "captions", "background", "narration", "talking_photo"})


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
class Ingested:
    research_id: int
    job_ids: list[int]
    created: bool
    source: str
    script: Script


@dataclass
class Prepared:
    research: Research
    settings: VideoSettings
    formats: list[str]
    avatar: str
    renderer: str
    script: Script


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Pipeline:
    def __init__(self, daemon: "Daemon"):
        self.daemon = daemon

    def unwrap(self, payload: Any, name: str) -> tuple[Any, str | None, VideoSettings]:
        if isinstance(payload, dict) and "research" in payload and set(payload) <= {"source", "request", "research"}:
            try:
                env = Envelope.model_validate(payload)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                raise ResearchError(f"{name}: request envelope field {where}: {err['msg']}") from None
            return env.research, env.source, env.request
        return payload, None, VideoSettings()

    def detect(self, payload: Any, name: str, explicit: str | None) -> str:
        sources = self.daemon.sources
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

    def extract(self, data: bytes, name: str, suffix: str) -> tuple[Research, VideoSettings]:
        payload, explicit, settings = self.unwrap(parse(data, name, suffix), name)
        source = self.detect(payload, name, explicit)
        try:
            research = self.daemon.sources[source].extract(payload)
        except ResearchError as exc:
            raise ResearchError(f"{name}: {source}: {exc}") from None
        except Exception as exc:  # a plugin surprised by a shape it half-recognised: the file's fault, said so
            raise ResearchError(f"{name}: looked like {source} data but could not be read: "
                                f"{type(exc).__name__}: {exc}") from None
        if not research.insights and not research.script_text:
            raise ResearchError(f"{name}: {source}: nothing usable: no insights after dropping deleted, "
                                "removed and empty items")
        return research, settings

    def write_script(self, research: Research, formats: list[str], voice_speed: float | None,
                     writer: str | None = None) -> Script:
        """Blocking: a writer may wait on the network (the LLM writer). Call it in a worker thread."""
        fmt = min((self.daemon.formats[f] for f in formats), key=lambda f: f.max_seconds)
        speed = voice_speed or fmt.voice_speed
        if research.script_text is not None:
            text = self.spoken_script(research.script_text, voice_speed)
            return Script(title=research.title, text=text, estimated_seconds=estimate_seconds(text, speed))
        templates = self.daemon.settings.script_templates
        template = templates.get(research.source) or templates.get("default")
        chosen = self.daemon.script_writer(writer or (template.writer if template else None))
        return chosen.write(research, research.source, Limits(max_seconds=fmt.max_seconds, voice_speed=speed))

    async def awrite_script(self, research: Research, formats: list[str], voice_speed: float | None,
                            writer: str | None = None) -> Script:
        """write_script from the event loop, without stalling it while a writer waits."""
        return await asyncio.to_thread(self.write_script, research, formats, voice_speed, writer)

    def spoken_script(self, script: str, voice_speed: float | None) -> str:
        """A script as it will be read, refused when no registered format is long enough for it.

        Refused here, at intake, with the limit in the sentence, instead of accepted, queued
        and failed by the renderer. The character cap every interface shares comes first, so
        a 20 MB text file is refused before it is cleaned.
        """
        if len(script) > SCRIPT_MAX_CHARS:
            raise ResearchError(f"the script is {len(script):,} characters; the limit is {SCRIPT_MAX_CHARS:,}")
        text = to_spoken(script)
        if not text:
            raise ResearchError("the script has no words to speak")
        longest = max(self.daemon.formats, key=lambda f: f.max_seconds)
        speed = voice_speed or longest.voice_speed
        seconds = estimate_seconds(text, speed)
        if seconds > longest.max_seconds:
            raise ResearchError(
                f"the script runs about {seconds:.0f} s read aloud ({len(text.split()):,} words), over the "
                f"{longest.max_seconds:g} s the longest format ({longest.name}) allows: shorten it to about "
                f"{words_for_seconds(longest.max_seconds, speed):,} words or split it into several files")
        return text

    def plan(self, settings: VideoSettings) -> tuple[list[str], str, str]:
        d = self.daemon
        formats = settings.formats or d.settings.default_formats
        for f in formats:
            d.formats[f]  # raises UnknownNameError naming the known ones
        avatar = settings.avatar or d.settings.default_avatar
        d.avatar(avatar)
        renderer = settings.renderer or d.settings.default_renderer
        if renderer not in d.renderers:
            raise UnknownNameError(f"no renderer named {renderer!r} (known: {', '.join(d.renderers.names())})")
        return formats, avatar, renderer

    def prepare(self, data: bytes, name: str, suffix: str, overrides: VideoSettings | None = None) -> Prepared:
        """Everything short of the store: parse, detect, extract, choose and write the script.

        Pure CPU work on the payload, so ingest() runs it in a thread and a 20 MB file never
        stalls the event loop (and with it the HTTP server and every running job's progress).
        """
        research, settings = self.extract(data, name, suffix)
        if overrides:
            # validated, not copied: a nested override (background) must become its model again
            settings = VideoSettings.model_validate({**settings.model_dump(exclude_none=True),
                                                     **overrides.model_dump(exclude_none=True)})
        try:
            formats, avatar, renderer = self.plan(settings)
            script = self.write_script(research, formats, settings.voice_speed, settings.writer)
        except (UnknownNameError, ResearchError) as exc:
            raise ResearchError(f"{name}: {exc}") from None
        own = {k: v for k, v in (("title", settings.title), ("description", settings.description),
                                 ("hashtags", settings.hashtags)) if v}
        if own:
            script = script.model_copy(update=own)
        return Prepared(research, settings, formats, avatar, renderer, script)

    async def ingest(self, data: bytes | Path, name: str, suffix: str, *, campaign_id: int | None = None,
                     overrides: VideoSettings | None = None, fresh_jobs: bool = False,
                     remote: bool = False) -> Ingested:
        """Everything for one file happens in one transaction; a re-drop finds the first one's jobs.

        `data` may be a path, read (a regular file only, never a link's target) in the same
        worker thread that parses it. `fresh_jobs` (one-shot `render`) makes new videos of
        research seen before instead. `remote` (an HTTP caller's payload) limits its media to
        URLs, like every remote interface's. A busy database is waited out, never a failure.
        """
        def work() -> tuple[Prepared, str]:
            raw = read_file(data, name) if isinstance(data, Path) else data
            return self.prepare(raw, name, suffix, overrides), content_hash(raw)

        p, digest = await asyncio.to_thread(work)  # one hop to a thread for reading and parsing
        settings = p.settings
        request = await self.daemon.media.settle(settings.job_settings(), remote=remote,
                                                 workspace=settings.workspace)
        jobs = [NewJob(renderer=p.renderer, format=f, avatar_id=p.avatar, title=p.script.title, request=request,
                       template_id=settings.template or self.daemon.settings.default_template,
                       workspace_id=settings.workspace, user_id=settings.user, campaign_id=campaign_id)
                for f in p.formats]
        store = self.daemon.store
        research_id, job_ids, created = await while_busy(lambda: store.add_research_with_jobs(
            digest, p.research, p.script, name, jobs, settings.workspace, settings.user, campaign_id), name)
        if not created and fresh_jobs:
            job_ids, created = await while_busy(lambda: store.add_jobs(jobs, research_id), name), True
        if created:
            for job_id in job_ids:
                # the writer's notes (text left out, a fallback) travel with the job's first report
                data = {"research_id": research_id, **({"notes": p.script.notes} if p.script.notes else {})}
                self.daemon.bus.announce(JobEvent(job_id=job_id, state=JobState.queued, percent=0,
                                                  message="queued", data=data))
            self.daemon.wake_jobs()
        return Ingested(research_id, job_ids, created, p.research.source, p.script)
