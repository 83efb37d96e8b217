"""From a payload to queued video jobs: plan it (planning.py), store it with its jobs in one go, queue them."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path

from .catalogue import Catalogue
from .jobs import Queued
from .media import MediaResolver
from .models import Script
from .decoding import read_file
from .planning import Prepared, VideoSettings, job_request, prepare, settled
from .store import NewJob, Store, while_busy


@dataclass
class Ingested:
    research_id: int
    job_ids: list[int]
    created: bool
    source: str
    script: Script
    first_filename: str | None = None
    """When nothing was created: the name of the file the research was first taken from (None: not a file)."""


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Pipeline:
    def __init__(self, catalogue: Catalogue, media: MediaResolver, store: Store, queued: Queued):
        self.catalogue = catalogue
        self.media = media
        self.store = store
        self.queued = queued

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
            return prepare(self.catalogue, raw, name, suffix, overrides), content_hash(raw)

        p, digest = await asyncio.to_thread(work)  # one hop to a thread for reading and parsing
        settings = p.settings
        request = await settled(self.catalogue, self.media, settings, renderer=p.renderer, avatar=p.avatar,
                                remote=remote, workspace=settings.workspace)
        jobs = [NewJob(renderer=p.renderer, format=f, avatar_id=p.avatar, title=script.title,
                       request=job_request(request, script),
                       template_id=settings.template or self.catalogue.settings.default_template,
                       workspace_id=settings.workspace, user_id=settings.user, campaign_id=campaign_id)
                for f, script in p.videos]
        store = self.store
        research_id, job_ids, created = await while_busy(lambda: store.add_research_with_jobs(
            digest, p.research, p.script, name, jobs, settings.workspace, settings.user, campaign_id), name)
        if not created and fresh_jobs:
            job_ids, created = await while_busy(lambda: store.add_jobs(jobs, research_id), name), True
        first = None
        if not created:
            row = await while_busy(lambda: store.research_job(research_id), name)
            first = row.filename if row else None
        if created:
            # the writer's notes (text left out, a fallback) travel with the job's first report
            self.queued(job_ids, research_id=research_id, **({"notes": p.script.notes} if p.script.notes else {}))
        return Ingested(research_id, job_ids, created, p.research.source, p.script, first)
