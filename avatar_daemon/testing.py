"""Helpers for testing plugins against a real daemon in a temporary folder.

    async def test_my_source(tmp_path):
        daemon = make_daemon(tmp_path, plugins=[MyPlugin()])
        async with running(daemon):
            drop(daemon, "x.json", b"...")
            await wait_until(lambda: daemon.inbox.stats.processed == 1)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

from .daemon import Daemon
from .errors import RenderError
from .hookspecs import hookimpl
from .job_files import job_folder
from .models import JobEvent, JobState, Notice, RenderRequest, RenderResult
from .plugin_loading import LoadSpec
from .settings import Settings, load_settings
from .store import Clock


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings rooted in tmp_path, HTTP on a free port, built-in avatars and templates."""
    config = {
        "data_dir": "var", "database": "var/db.sqlite3",
        "inbox": {"path": "inbox", "settle_seconds": 0.05},
        "jobs": {"output_dir": "var/videos"},
        "http": {"port": 0},
        "default_renderer": "fake",
        "notifiers": ["recording"],
        "campaigns_dir": "campaigns",
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    path = tmp_path / "daemon.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return load_settings(path, environ={})


class RecordingNotifier:
    """Keeps every event it hears, in order."""

    name = "recording"

    def __init__(self) -> None:
        self.events: list[JobEvent] = []
        self.notices: list[Notice] = []

    async def notify(self, event: JobEvent) -> None:
        self.events.append(event)

    async def notice(self, notice: Notice) -> None:
        self.notices.append(notice)

    def states(self, job_id: int) -> list[str]:
        return [e.state.value for e in self.events if e.job_id == job_id]


class FakeRenderer:
    """Finishes in `seconds`, reporting progress; writes a small file so results are real paths."""

    name = "fake"

    def __init__(self, seconds: float = 0.0, fail: str | None = None, max_concurrency: int = 2):
        self.seconds = seconds
        self.fail = fail
        self.max_concurrency = max_concurrency
        self.requests: list[RenderRequest] = []

    def list_avatars(self) -> list:
        return []

    async def render(self, request: RenderRequest, progress) -> RenderResult:
        self.requests.append(request)
        for step in range(1, 5):
            await asyncio.sleep(self.seconds / 4)
            progress(step * 25.0, f"step {step}")
        if self.fail:
            raise RenderError(self.fail)
        request.output_dir.mkdir(parents=True, exist_ok=True)
        video = request.output_dir / "video.txt"
        video.write_text(request.script.text)
        return RenderResult(video=video, duration=1.0)


class RecordingPlugin:
    """Registers a RecordingNotifier and a FakeRenderer; keep a reference to inspect them."""

    __name__ = "testing"

    def __init__(self, renderer: FakeRenderer | None = None):
        self.notifier = RecordingNotifier()
        self.renderer = renderer or FakeRenderer()

    @hookimpl
    def register_notifiers(self, register):
        register(self.notifier)

    @hookimpl
    def register_renderers(self, register):
        register(self.renderer)


def make_daemon(tmp_path: Path, plugins: tuple | list = (), settings: Settings | None = None,
                clock: Clock | None = None, **overrides: Any) -> Daemon:
    """A daemon with the built-in plugins only (nothing else installed leaks in) plus `plugins`.

    `clock` (a callable returning an aware datetime) stands in for the wall clock everywhere:
    the store's time stamps and the campaign scheduler, so no test depends on today's date.
    """
    settings = settings or make_settings(tmp_path, **overrides)
    return Daemon(settings, LoadSpec(installed=False, plugins_dir=settings.plugins.plugins_dir),
                  extra_plugins=tuple(plugins), **({"clock": clock} if clock else {}))


@contextlib.asynccontextmanager
async def running(daemon: Daemon) -> AsyncIterator[Daemon]:
    """Run the daemon in a task, until its watchers listen and its HTTP server (if any) serves.

    On the way out: stop it and wait for a clean exit. A daemon that fails to start raises here.
    """
    task = asyncio.create_task(daemon.run())

    async def until(ready: Callable[[], Awaitable[Any]], what: str) -> None:
        waiter = asyncio.ensure_future(ready())
        done, _ = await asyncio.wait({task, waiter}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if waiter in done:
            waiter.result()  # its own failure, if any
        elif task in done:
            task.result()
            raise RuntimeError(f"the daemon stopped before {what}")
        else:
            raise TimeoutError(f"the daemon started, but {what} did not happen in 30 s")

    try:
        await until(lambda: wait_until(lambda: daemon.campaigns is not None, interval=0.01), "its services were made")
        await until(daemon.inbox.listening.wait, "the inbox watcher listened")
        await until(daemon.campaigns.listening.wait, "the campaign folder watcher listened")
        if daemon.settings.http.enabled:
            await until(daemon.http_ready.wait, "the HTTP server listened")
        yield daemon
    finally:
        daemon.stop()
        async with asyncio.timeout(30):
            await task


def drop(daemon: Daemon, name: str, data: bytes | str) -> Path:
    """Write a file into the inbox the way careful producers do: a temporary name, then a rename."""
    inbox = daemon.settings.inbox.path
    tmp = inbox / (name + ".part")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return tmp.rename(inbox / name)


async def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)


async def wait_for_final(daemon: Daemon, job_id: int, timeout: float = 60.0) -> JobState:
    async def final():
        job = await daemon.store.job(job_id)
        return job.status if job and job.status.final else None

    return await wait_until(final, timeout)


async def fail_on_a_full_disk_then_retry(daemon: Daemon, job_id: int, part: str) -> tuple[Any, list[str], Any, Any]:
    """Run a job whose output `part` (a temporary file name) points at /dev/full, then retry it.

    /dev/full gives real ENOSPC from the kernel; the link goes with the job's partial files,
    so the retry runs with room. Returns (the failed job, what its folder held after the
    failure, the retried job, the retry's RenderResult). Needs `daemon.started()`.
    """
    out = job_folder(daemon.settings.jobs.output_dir, job_id)
    out.mkdir(parents=True, exist_ok=True)
    (out / part).symlink_to("/dev/full")
    await daemon.jobs.execute(await daemon.store.claim(job_id))
    failed = await daemon.store.job(job_id)
    left = sorted(p.name for p in out.iterdir())
    await daemon.jobs.retry(job_id)
    result = await daemon.jobs.execute(await daemon.store.claim(job_id))
    return failed, left, await daemon.store.job(job_id), result
