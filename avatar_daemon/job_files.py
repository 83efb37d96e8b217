"""Where a job's files live, and the weekly clean-up that removes those of jobs that ended long ago."""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from .settings import JobSettings
from .store import Clock, Store

log = logging.getLogger(__name__)

CLEANUP_EVERY = timedelta(days=7)
MAX_WAIT = 3600.0  # looked at least hourly, whatever the clock did (suspend, NTP)


def job_folder(output_dir: Path, job_id: int) -> Path:
    """The one folder a job's renderer writes into and the clean-up removes."""
    return output_dir / f"job-{job_id}"


class Cleanup:
    """The seed's weekly clean-up: video folders of ended jobs older than `jobs.retention_days`."""

    name = "cleanup"

    def __init__(self, store: Store, cfg: JobSettings, clock: Clock):
        self.store = store
        self.cfg = cfg
        self.clock = clock

    async def run(self) -> None:
        days = self.cfg.retention_days
        if not days:
            return
        while True:
            last = await self.store.get_meta("cleanup.last_at")
            now = self.clock()
            due = datetime.fromisoformat(last) + CLEANUP_EVERY if last else now
            if due <= now:
                await self.clean(now - timedelta(days=days))
                await self.store.set_meta("cleanup.last_at", now.isoformat())
                due = now + CLEANUP_EVERY
            await asyncio.sleep(min(MAX_WAIT, (due - now).total_seconds()))

    async def clean(self, cutoff: datetime) -> int:
        removed = 0
        for job_id in await self.store.ended_before(cutoff):
            folder = job_folder(self.cfg.output_dir, job_id)
            if folder.is_dir():
                await asyncio.to_thread(shutil.rmtree, folder, True)
                removed += 1
        if removed:
            log.info("clean-up: removed the files of %d video(s) that ended before %s", removed,
                     cutoff.date().isoformat())
        return removed
