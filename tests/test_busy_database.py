"""A database another connection holds past the busy timeout: work waits its turn and never fails for it."""

import asyncio
import contextlib
import sqlite3

import pytest

from avatar_daemon.store import Store, while_busy
from avatar_daemon.testing import FakeRenderer, RecordingPlugin, drop, make_daemon, running, wait_for_final, wait_until
from tests.conftest import fixture_bytes


@contextlib.asynccontextmanager
async def held(database):
    """Another writer's open transaction (a backup tool, a second daemon by mistake): SQLite answers BUSY.

    Taken in a thread: the daemon may be mid-transaction, and must go on running to finish it.
    """
    other = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    await asyncio.to_thread(other.execute, "BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def _said(caplog, words):
    return any(words in r.getMessage() for r in caplog.records)


async def _short_busy_timeout(daemon):
    """Busy after 50 ms instead of 5 s, so the test does not wait out the real timeout."""
    await daemon.store.db.execute("PRAGMA busy_timeout=50")


async def test_a_drop_waits_for_a_locked_database_and_is_never_failed_for_it(daemon, caplog):
    async with running(daemon):
        await _short_busy_timeout(daemon)
        async with held(daemon.settings.database):
            drop(daemon, "hn.json", fixture_bytes("hn_algolia.json"))
            await wait_until(lambda: _said(caplog, "hn.json: the database is busy"))
            assert list(daemon.inbox.failed.iterdir()) == []
        await wait_until(lambda: (daemon.inbox.done / "hn.json").exists())
        jobs = await daemon.store.jobs()
    assert len(jobs) == 1 and list(daemon.inbox.failed.iterdir()) == []


class GatedRenderer(FakeRenderer):
    """Renders when the test opens the gate, so the database can be locked mid-job."""

    def __init__(self):
        super().__init__()
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def render(self, request, progress):
        self.started.set()
        await self.gate.wait()
        return await super().render(request, progress)


async def test_a_job_that_ends_while_the_database_is_locked_still_completes(tmp_path, caplog):
    renderer = GatedRenderer()
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(renderer)])
    async with running(daemon):
        await _short_busy_timeout(daemon)
        (job_id,) = (await daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "x.json", ".json")).job_ids
        await asyncio.wait_for(renderer.started.wait(), 20)
        async with held(daemon.settings.database):
            renderer.gate.set()  # progress, then the final state, all meet the lock
            await wait_until(lambda: any(f"job {job_id} (" in r.getMessage() and "the database is busy" in r.getMessage()
                                         for r in caplog.records))
        assert await wait_for_final(daemon, job_id, timeout=20) == "completed"
        job = await daemon.store.job(job_id)
    assert job.error is None and job.result["video"].endswith("video.txt")


async def test_only_a_busy_database_is_waited_out(tmp_path):
    async with Store.open(tmp_path / "db.sqlite3") as store:
        with pytest.raises(sqlite3.OperationalError, match="syntax error"):
            await while_busy(lambda: store.db.execute("SELEC 1"), "a typo")  # at once, not retried


async def test_a_write_cancelled_while_it_waits_for_the_lock_leaves_no_transaction_open(tmp_path):
    """A job cancelled (or the daemon stopped) while its write waits out a busy database: SQLite still
    begins the transaction in aiosqlite's thread once the lock frees. Left open, it made every later
    write fail with "cannot start a transaction within a transaction" until a restart."""
    path = tmp_path / "db.sqlite3"
    async with Store.open(path) as store:
        async with held(path):
            write = asyncio.create_task(store.set_meta("k", "cancelled"))
            await wait_until(store._write.locked, interval=0)  # its BEGIN IMMEDIATE is in SQLite's busy wait
            write.cancel()
        with pytest.raises(asyncio.CancelledError):
            await write
        await store.set_meta("k", "written")
        assert await store.get_meta("k") == "written"


async def test_closing_the_store_waits_for_the_transaction_in_flight(tmp_path):
    """A job's last write as the daemon stops: it commits, instead of meeting a closed database."""
    started, release = asyncio.Event(), asyncio.Event()

    async with Store.open(tmp_path / "db.sqlite3") as store:
        async def write():
            async with store.transaction():
                await store.db.execute("INSERT INTO meta VALUES ('k', 'in flight')")
                started.set()
                await release.wait()

        task = asyncio.create_task(write())
        await started.wait()
        asyncio.get_running_loop().call_soon(release.set)  # the block below closes while it is open
    await task  # committed, not "Cannot operate on a closed database"
    async with Store.open(tmp_path / "db.sqlite3") as store:
        assert await store.get_meta("k") == "in flight"
