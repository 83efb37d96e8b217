"""The inbox: watch a folder, claim each stable file, ingest it, and file it under done/ or failed/.

Nothing dropped is ever deleted: every file ends in done/ or failed/ (with a sidecar
saying why), and a file claimed into processing/ before a crash is taken up again at
start, where the content hash stops it from making a second set of jobs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import watchfiles

from .errors import AvatarDaemonError

if TYPE_CHECKING:
    from .daemon import Daemon

log = logging.getLogger(__name__)

IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".swp", ".error.txt")
AREAS = ("processing", "done", "failed")
RESCAN_SECONDS = 2.0


def ignored(path: Path) -> bool:
    return path.name.startswith(".") or path.name.endswith(IGNORED_SUFFIXES)


@dataclass
class InboxStats:
    processed: int = 0
    failed: int = 0
    duplicates: int = 0


class Inbox:
    name = "inbox"

    def __init__(self, daemon: "Daemon"):
        self.daemon = daemon
        cfg = daemon.settings.inbox
        self.root: Path = cfg.path
        self.processing, self.done, self.failed = (self.root / a for a in AREAS)
        self.settle = cfg.settle_seconds
        self.max_bytes = cfg.max_file_bytes
        self.stats = InboxStats()
        self._inflight: set[Path] = set()
        self._limit = asyncio.Semaphore(cfg.workers)
        self._tasks: set[asyncio.Task] = set()
        self.idle = asyncio.Event()
        self.idle.set()

    def prepare(self) -> None:
        for d in (self.root, self.processing, self.done, self.failed):
            d.mkdir(parents=True, exist_ok=True)

    async def run(self, daemon: "Daemon" | None = None) -> None:
        self.prepare()
        for path in sorted(self.processing.iterdir()):  # claimed before a crash or a stop
            if path.is_file() and not ignored(path):
                log.info("inbox: recovering %s left in processing/", path.name)
                self._spawn(self._process_claimed(path))
        # The daemon's own stop event ends the watcher thread at once instead of at its next timeout.
        # A quiet spell yields an empty set: the folder is then rescanned, which catches files dropped
        # before the watcher started and any event the OS dropped under a burst.
        watcher = watchfiles.awatch(self.root, recursive=False, stop_event=self.daemon.stopping, step=50, debounce=200,
                                    rust_timeout=int(RESCAN_SECONDS * 1000), yield_on_timeout=True,
                                    watch_filter=lambda change, p: change != watchfiles.Change.deleted)
        try:
            self.scan()  # files dropped while the daemon was down
            async for changes in watcher:
                if not changes:
                    self.scan()
                for _, p in changes:
                    self.offer(Path(p))
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=5)

    def scan(self) -> None:
        for path in sorted(self.root.iterdir()):
            self.offer(path)

    def offer(self, path: Path) -> None:
        if path.parent != self.root or ignored(path) or path in self._inflight or not path.is_file():
            return
        self._inflight.add(path)
        self._spawn(self._handle(path))

    def _spawn(self, coro) -> None:
        self.idle.clear()
        task = asyncio.create_task(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self._tasks.discard(t)
            if not self._tasks:
                self.idle.set()

        task.add_done_callback(done)

    async def _handle(self, path: Path) -> None:
        try:
            if not await self._wait_stable(path):
                return
            claimed = self._claim(path)
        finally:
            self._inflight.discard(path)
        if claimed:
            await self._process_claimed(claimed)

    async def _wait_stable(self, path: Path) -> bool:
        """Stable = same size and mtime, untouched for `settle` seconds (a writer has finished)."""
        previous = None
        while True:
            try:
                st = path.stat()
            except FileNotFoundError:
                return False  # taken away by its writer (e.g. renamed into place elsewhere)
            sig = (st.st_size, st.st_mtime_ns)
            age = time.time() - st.st_mtime
            if sig == previous and age >= self.settle:
                return True
            if previous is None and age >= self.settle * 2:
                return True  # already old when seen: dropped while we were down
            previous = sig
            await asyncio.sleep(max(self.settle - age, 0.05))

    def _claim(self, path: Path) -> Path | None:
        target = _free_name(self.processing, path.name)
        try:
            os.rename(path, target)  # atomic on one filesystem: exactly one claimer wins
        except FileNotFoundError:
            return None
        return target

    async def _process_claimed(self, path: Path) -> None:
        async with self._limit:
            name = path.name
            try:
                size = path.stat().st_size
                if size > self.max_bytes:
                    raise AvatarDaemonError(
                        f"{name}: the file is {_human(size)}, over the inbox limit of {_human(self.max_bytes)} "
                        "(inbox.max_file_bytes)")
                result = await self.daemon.pipeline.ingest(path, name, path.suffix)
            except AvatarDaemonError as exc:
                self._fail(path, str(exc))
                return
            except Exception as exc:
                log.exception("inbox: unexpected error on %s", name)
                self._fail(path, f"{name}: internal error while processing: {type(exc).__name__}: {exc}")
                return
            _move(path, self.done)
            if result.created:
                self.stats.processed += 1
                log.info("inbox: %s -> %s research #%d, jobs %s", name, result.source, result.research_id,
                         result.job_ids)
            else:
                self.stats.duplicates += 1
                log.info("inbox: %s was already ingested as research #%d (jobs %s); no new jobs", name,
                         result.research_id, result.job_ids)

    def _fail(self, path: Path, reason: str) -> None:
        self.stats.failed += 1
        target = _move(path, self.failed)
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        target.with_name(target.name + ".error.txt").write_text(f"{reason}\n\nfailed at {stamp}\n", encoding="utf-8")
        log.warning("inbox: %s -> failed/: %s", path.name, reason)


def _free_name(folder: Path, name: str) -> Path:
    """A name in `folder` that nothing holds yet; nothing is ever overwritten."""
    target = folder / name
    stem, suffix = os.path.splitext(name)
    n = 1
    while target.exists():
        target = folder / f"{stem}.{n}{suffix}"
        n += 1
    return target


def _move(path: Path, folder: Path) -> Path:
    target = _free_name(folder, path.name)
    os.rename(path, target)
    return target


def _human(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
