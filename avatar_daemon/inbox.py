"""The inbox: watch a folder, claim each stable entry, ingest it, and file it under done/ or failed/.

Nothing dropped is ever deleted or silently left behind: every entry ends in done/ or
failed/ with a sidecar saying why (a link, a folder, a pipe and bad research alike), a
file that cannot be claimed is named once and tried again with backoff, and a file
claimed into processing/ before a crash is taken up again at start, where the content
hash stops it from making a second set of jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import stat
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Awaitable, Callable

import watchfiles

from .errors import AvatarDaemonError
from .models import Notice
from .pipeline import Ingested
from .settings import InboxSettings
from .watching import watch

log = logging.getLogger(__name__)

ERROR_SUFFIX = ".error.txt"
DUPLICATE_SUFFIX = ".duplicate.txt"
IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".swp", ERROR_SUFFIX, DUPLICATE_SUFFIX)
AREAS = ("processing", "done", "failed")
RESCAN_SECONDS = 2.0
NAME_MAX = 255
"""Bytes in one file name on every filesystem an inbox is likely to live on."""
HOW_TO_WRITE = ("To drop big or slow files, write them under a temporary name (NAME.part or NAME.tmp) and rename "
                "them into the inbox when complete: the inbox never takes those names.")


def ignored(path: Path) -> bool:
    return path.name.startswith(".") or path.name.endswith(IGNORED_SUFFIXES)


@dataclass
class InboxStats:
    processed: int = 0
    failed: int = 0
    duplicates: int = 0


@dataclass
class Trouble:
    """A file the inbox could not claim or move: named once, then tried again with growing pauses."""

    tries: int
    error: str
    retry: asyncio.TimerHandle | None = None


class Inbox:
    name = "inbox"

    def __init__(self, cfg: InboxSettings, node_id: str, ingest: Callable[[Path, str, str], Awaitable[Ingested]],
                 notice: Callable[[Notice], None], stopping: asyncio.Event):
        self.ingest, self.notice, self.stopping = ingest, notice, stopping
        self.root: Path = cfg.path
        self.processing_root, self.done, self.failed = (self.root / a for a in AREAS)
        # Each node claims into a folder of its own, so on an inbox several daemons share, a node
        # that restarts takes up only what it had claimed itself (`adopt` takes a dead node's).
        self.node = node_id
        self.processing = self.processing_root / self.node
        self.polling = cfg.force_polling
        self.poll_ms = cfg.poll_ms
        self.settle = cfg.settle_seconds
        self.max_bytes = cfg.max_file_bytes
        self.stats = InboxStats()
        # Pauses between tries on a file that cannot be claimed: first, doubling up to the cap.
        self.retry_first, self.retry_cap = 2.0, 300.0
        self.trouble: dict[str, Trouble] = {}
        self._inflight: set[Path] = set()
        self._limit = asyncio.Semaphore(cfg.workers)
        self._tasks: set[asyncio.Task] = set()
        self.idle = asyncio.Event()
        self.idle.set()
        self.listening = asyncio.Event()  # the watcher is in place: a file dropped from now on is seen at once

    def prepare(self) -> None:
        for d in (self.root, self.processing, self.done, self.failed):
            d.mkdir(parents=True, exist_ok=True)

    async def run(self) -> None:
        self.prepare()
        for path in sorted(self.processing.iterdir()):  # claimed before a crash or a stop
            if not ignored(path):
                log.info("inbox: recovering %s left in processing/%s/", path.name, self.node)
                self._spawn(self._process_claimed(path, None))
        self._take_over(self.processing_root, "processing/")  # claimed by a daemon older than node folders
        # The daemon's own stop event ends the watcher thread at once instead of at its next timeout.
        # A quiet spell yields an empty set: the folder is then rescanned, which catches files dropped
        # before the watcher started and any event the OS dropped under a burst.
        watcher = watch(self.root, self.listening, recursive=False, stop_event=self.stopping, step=50, debounce=200,
                        rust_timeout=int(RESCAN_SECONDS * 1000), yield_on_timeout=True,
                        watch_filter=lambda change, p: change != watchfiles.Change.deleted,
                        force_polling=self.polling, poll_delay_ms=self.poll_ms)
        try:
            self.scan()  # files dropped while the daemon was down
            async for changes in watcher:
                if not changes:
                    self.scan()
                for _, p in changes:
                    self.offer(Path(p))
        finally:
            for trouble in self.trouble.values():
                if trouble.retry:
                    trouble.retry.cancel()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=5)

    def adopt(self, node: str) -> int:
        """Take up what a node that stopped heartbeating had claimed; how many entries this node won.

        Each entry moves into this node's own folder first (one rename: if two nodes adopt at
        once, each entry goes to one of them), then is processed as a recovered claim: the
        content hash keeps a file the dead node had half ingested from making a second set of jobs.
        """
        folder = self.processing_root / node
        if node == self.node or not folder.is_dir():
            return 0
        taken = self._take_over(folder, f"processing/{node}/ (node {node} stopped heartbeating)")
        with contextlib.suppress(OSError):
            folder.rmdir()  # empty now, unless the node came back and claimed again meanwhile
        return taken

    def stale_folders(self, alive: set[str]) -> list[str]:
        """Node folders under processing/ whose node is not among `alive`."""
        with contextlib.suppress(FileNotFoundError):
            return sorted(p.name for p in self.processing_root.iterdir()
                          if p.is_dir() and not p.is_symlink() and p.name not in alive and p.name != self.node)
        return []

    def _take_over(self, folder: Path, where: str) -> int:
        taken = 0
        for path in sorted(folder.iterdir()):
            if ignored(path) or path.is_dir() and not path.is_symlink() and folder == self.processing_root:
                continue  # the node folders themselves
            try:
                claimed = _rename(path, _free_name(self.processing, path.name))
            except FileNotFoundError:
                continue  # another node took it first
            log.info("inbox: recovering %s left in %s", path.name, where)
            self._spawn(self._process_claimed(claimed, None))
            taken += 1
        return taken

    def scan(self) -> None:
        for path in sorted(self.root.iterdir()):
            self.offer(path)

    def offer(self, path: Path) -> None:
        """Take up any entry of the inbox itself (file, folder, link, pipe) but our own folders and ignored names."""
        if path.parent != self.root or path.name in AREAS or ignored(path) or path in self._inflight:
            return
        trouble = self.trouble.get(path.name)
        if trouble and trouble.retry:  # waiting out its pause: the timer offers it again
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
            seen = await self._wait_stable(path)
            claimed = _rename(path, _free_name(self.processing, path.name)) if seen else None
        except FileNotFoundError:
            claimed = None  # taken away by its writer (renamed into place elsewhere) or by another claimer
        except OSError as exc:  # immutable, not ours, a broken disk: say so once, try again later
            self._in_trouble(path, exc, "cannot be taken from the inbox")
            return
        finally:
            self._inflight.discard(path)
        if not claimed:
            self.trouble.pop(path.name, None)  # gone: a new file of that name is news again
            return
        self._out_of_trouble(path.name)
        await self._process_claimed(claimed, seen)

    async def _wait_stable(self, path: Path) -> os.stat_result | None:
        """Stable = the same size and mtime for `settle` seconds of our own watching (a writer has finished).

        Quietness is measured on the loop's clock, never as now minus mtime: a file copied from
        a machine whose clock is ahead has an mtime in the future and would otherwise wait
        forever. Only an entry already old when first seen (dropped while we were down) is
        taken at once. lstat: a link is judged as itself, never by what it points to.
        """
        loop = asyncio.get_running_loop()
        previous, since = None, 0.0
        while True:
            try:
                st = path.lstat()
            except FileNotFoundError:
                return None
            sig = (st.st_size, st.st_mtime_ns, st.st_ino)
            now = loop.time()
            if sig == previous and now - since >= self.settle:
                return st
            if sig != previous:
                if previous is None and time.time() - st.st_mtime >= self.settle * 2:
                    return st
                previous, since = sig, now
            await asyncio.sleep(max(self.settle - (now - since), 0.05))

    async def _process_claimed(self, path: Path, seen: os.stat_result | None) -> None:
        """Ingest one claimed entry; `seen` is how it looked when claimed (None when recovered at start)."""
        async with self._limit:
            name = path.name
            try:
                refusal = self._refusal(path)
                if refusal:
                    raise AvatarDaemonError(refusal)
                result = await self.ingest(path, name, path.suffix)
            except AvatarDaemonError as exc:
                reason = str(exc)
            except Exception as exc:
                if isinstance(exc, FileNotFoundError) and not os.path.lexists(path):
                    # Another node took it over (it thought this one dead): it is that node's to file now.
                    log.warning("inbox: %s was taken out of processing/%s/ by another node before it was read",
                                name, self.node)
                    return
                log.exception("inbox: unexpected error on %s", name)
                reason = f"{name}: internal error while processing: {type(exc).__name__}: {exc}"
            else:
                # a file recovered from processing/ whose own jobs were committed before a crash is no re-drop
                again = not result.created and not (seen is None and result.first_filename == name)
                note = (lambda target: (DUPLICATE_SUFFIX, _duplicate(target, result))) if again else None
                if await self._file_away(path, self.done, note):
                    self._count_done(name, result, again)
                return
        # Outside the worker slot: waiting to see whether the writer is still at it costs nobody a turn.
        reason += await self._still_written(path, seen)
        if await self._file_away(path, self.failed, lambda target: (ERROR_SUFFIX, reason)):
            self.stats.failed += 1
            log.warning("inbox: %s -> failed/: %s", name, reason)

    def _refusal(self, path: Path) -> str | None:
        """Why the inbox will not read this entry at all, or None for a regular file within the size limit."""
        name, st = path.name, path.lstat()
        if stat.S_ISLNK(st.st_mode):
            return (f"{name} is a symbolic link (to {os.readlink(path)!r}): the inbox never follows a link out of "
                    "itself; put the file itself in the inbox (a hard link is fine)")
        if stat.S_ISDIR(st.st_mode):
            try:
                entries = sum(1 for _ in os.scandir(path))
            except OSError:
                entries = None
            held = f" (it holds {entries} entr{'y' if entries == 1 else 'ies'})" if entries is not None else ""
            return (f"{name} is a folder{held}: the inbox takes files only and does not look inside folders; "
                    "move the files themselves into the inbox")
        if not stat.S_ISREG(st.st_mode):
            return f"{name} is not a regular file but {_kind(st.st_mode)}: the inbox reads regular files only"
        if st.st_size > self.max_bytes:
            size, limit = _sizes(st.st_size, self.max_bytes)
            return f"{name}: the file is {size}, over the inbox limit of {limit} (inbox.max_file_bytes)"
        return None

    async def _still_written(self, path: Path, seen: os.stat_result | None) -> str:
        """A note for the sidecar when the file changed after it was claimed: its writer had not finished.

        A writer that does not rename into place makes a file that fails as cut-short JSON;
        the useful answer is how to write it, not only that it was invalid. One settle
        period more catches a writer that was pausing when the file was claimed.
        """
        if seen is None:
            return ""
        await asyncio.sleep(self.settle)
        try:
            now = path.lstat()
        except OSError:
            return ""
        if (now.st_size, now.st_mtime_ns) == (seen.st_size, seen.st_mtime_ns):
            return ""
        before, after = _sizes(seen.st_size, now.st_size)
        return (f"\n\n{path.name} changed after the inbox took it ({before} then, {after} now): it was still "
                f"being written. {HOW_TO_WRITE}")

    async def _file_away(self, path: Path, folder: Path, note: Callable[[Path], tuple[str, str]] | None
                         ) -> Path | None:
        """Move a processed entry to done/ or failed/, its sidecar (suffix, text) written first.

        First: a kill -9 between the two leaves the entry in processing/, to be taken again at
        start, never filed without its reason. A folder that refuses files is waited out.
        """
        while True:
            target = _free_name(folder, path.name)
            try:
                if note:
                    _write_sidecar(target, *note(target))
                _rename(path, target)
            except FileNotFoundError:
                if os.path.lexists(path):
                    raise
                log.warning("inbox: %s was taken out of processing/ by someone else before it could be filed",
                            path.name)
                return None
            except OSError as exc:
                await asyncio.sleep(self._in_trouble(path, exc, f"cannot be moved to {folder.name}/", retry=False))
                continue
            self._out_of_trouble(path.name)
            return target

    def _count_done(self, name: str, result: Ingested, again: bool) -> None:
        if again:
            self.stats.duplicates += 1
            log.info("inbox: %s made no new video: its content is research #%d already (jobs %s)", name,
                     result.research_id, result.job_ids)
        else:
            self.stats.processed += 1
            log.info("inbox: %s -> %s research #%d, jobs %s", name, result.source, result.research_id,
                     result.job_ids)

    def _in_trouble(self, path: Path, exc: OSError, doing: str, retry: bool = True) -> float:
        """Name a stuck file once (log and notifiers), then back off; the pause before the next try.

        With `retry`, a timer offers the file again after the pause: rescans until then skip it.
        """
        name = path.name
        trouble = self.trouble.get(name)
        error = f"{type(exc).__name__}: {exc.strerror or exc}"
        if trouble is None:
            trouble = self.trouble[name] = Trouble(0, error)
            message = f"{name} {doing}: {error}; the inbox will keep trying, with growing pauses"
            log.warning("inbox: %s", message)
            self.notice(Notice(kind="inbox.stuck", message=message, data={"file": name, "error": error}))
        trouble.tries += 1
        delay = min(self.retry_first * 2 ** (trouble.tries - 1), self.retry_cap)
        if retry:
            trouble.retry = asyncio.get_running_loop().call_later(delay, self._retry, path)
        return delay

    def _retry(self, path: Path) -> None:
        trouble = self.trouble.get(path.name)
        if trouble:
            trouble.retry = None
        if path.parent == self.root and not os.path.lexists(path):
            self.trouble.pop(path.name, None)  # gone: a new file of that name is news again
            return
        self.offer(path)

    def _out_of_trouble(self, name: str) -> None:
        trouble = self.trouble.pop(name, None)
        if trouble:
            log.info("inbox: %s could be handled after %d failed tries (%s)", name, trouble.tries, trouble.error)


def _rename(path: Path, target: Path) -> Path:
    """Atomic on one filesystem: exactly one claimer wins. A deleted area folder is made again."""
    try:
        os.rename(path, target)
    except FileNotFoundError:
        if not os.path.lexists(path) or target.parent.exists():
            raise
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(path, target)
    return target


def _free_name(folder: Path, name: str) -> Path:
    """A name in `folder` that nothing holds yet and that fits the filesystem; nothing is ever overwritten."""
    target = folder / name
    stem, suffix = os.path.splitext(name)
    if len(suffix) > 16:  # not a real suffix: keep the whole name as the part that may be shortened
        stem, suffix = name, ""
    n = 1
    while os.path.lexists(target):
        target = folder / _fit(stem, f".{n}{suffix}")
        n += 1
    return target


def _fit(head: str, tail: str) -> str:
    """`head + tail` within NAME_MAX bytes: head is shortened, and marked with a hash so shortened names differ."""
    if len(os.fsencode(head + tail)) <= NAME_MAX:
        return head + tail
    mark = "~" + hashlib.sha256(os.fsencode(head)).hexdigest()[:8]
    room = NAME_MAX - len(os.fsencode(mark + tail))
    cut = os.fsencode(head)[:max(room, 0)]
    return cut.decode("utf-8", "ignore") + mark + tail  # "ignore": never half a character


def _duplicate(target: Path, result: Ingested) -> str:
    jobs = ", ".join(f"#{i}" for i in result.job_ids) or "none"
    return (f"{target.name}: no new video: the same content was already taken as research #{result.research_id} "
            f"(videos {jobs})")


def _write_sidecar(target: Path, suffix: str, message: str) -> None:
    """`message` next to the file it is about, under a name that fits; its first words name the file in full."""
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    target.parent.mkdir(parents=True, exist_ok=True)  # an area folder someone deleted
    target.with_name(_fit(target.name, suffix)).write_text(f"{message}\n\nat {stamp}\n", encoding="utf-8",
                                                           errors="backslashreplace")


def _kind(mode: int) -> str:
    for test, words in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return words
    return "a special file"


def _sizes(a: int, b: int) -> tuple[str, str]:
    """Two sizes that read differently whenever they differ: exact bytes when the rounded ones would match."""
    ha, hb = _human(a), _human(b)
    if ha == hb and a != b:
        return f"{a:,} bytes", f"{b:,} bytes"
    return ha, hb


def _human(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
