"""The job runner: states persisted and published, failures and cancels, restart requeue."""

from avatar_daemon.store import NewJob
from avatar_daemon.testing import FakeRenderer, RecordingPlugin, make_daemon, running, wait_for_final, wait_until
from tests.conftest import fixture_bytes


async def _queue(daemon, n=1):
    ing = await daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "x.json", ".json")
    if n > 1:
        job = await daemon.store.job(ing.job_ids[0])
        more = [NewJob("fake", "tiktok", "sarah", job.title, {}) for _ in range(n - 1)]
        return ing.job_ids + await daemon.store.add_jobs(more, ing.research_id)
    return ing.job_ids


async def test_failure_is_persisted_with_reason(tmp_path):
    plugin = RecordingPlugin(FakeRenderer(fail="the avatar is on holiday"))
    daemon = make_daemon(tmp_path, plugins=[plugin])
    async with running(daemon):
        (job_id,) = await _queue(daemon)
        assert await wait_for_final(daemon, job_id) == "failed"
        job = await daemon.store.job(job_id)
    assert job.error == "the avatar is on holiday"
    await wait_until(lambda: "failed" in plugin.notifier.states(job_id))


async def test_concurrency_is_bounded_per_renderer(tmp_path):
    renderer = FakeRenderer(seconds=0.4, max_concurrency=2)
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(renderer)])
    peak = 0
    async with running(daemon):
        ids = await _queue(daemon, 5)
        while True:
            peak = max(peak, len(daemon.jobs.running))
            states = [(await daemon.store.job(i)).status.final for i in ids]
            if all(states):
                break
            await __import__("asyncio").sleep(0.02)
    assert peak == 2


async def test_cancel_running_job(tmp_path):
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(FakeRenderer(seconds=5))])
    async with running(daemon):
        (job_id,) = await _queue(daemon)
        await wait_until(lambda: job_id in daemon.jobs.running)
        assert await daemon.jobs.cancel(job_id)
        assert (await daemon.store.job(job_id)).status == "cancelled"
        assert not await daemon.jobs.cancel(job_id)


async def test_interrupted_job_requeued_on_restart(tmp_path):
    slow = make_daemon(tmp_path, plugins=[RecordingPlugin(FakeRenderer(seconds=30))])
    async with running(slow):
        (job_id,) = await _queue(slow)
        await wait_until(lambda: job_id in slow.jobs.running)
    # stopped mid-render: the job is still `rendering`; a new daemon runs it again
    fast = make_daemon(tmp_path, plugins=[RecordingPlugin(FakeRenderer())])
    async with running(fast):
        assert await wait_for_final(fast, job_id) == "completed"
        job = await fast.store.job(job_id)
    assert job.attempts == 2


async def test_progress_is_coalesced_and_monotonic(daemon, plugin):
    async with running(daemon):
        (job_id,) = await _queue(daemon)
        await wait_for_final(daemon, job_id)
        events = await daemon.store.events(job_id)
    percents = [e.percent for e in events if e.state == "rendering"]
    assert percents == sorted(percents) and percents[0] == 0
    assert events[-1].state == "completed" and events[-1].percent == 100


async def test_runner_stops_when_a_stop_meets_a_wake(daemon):
    """A job finishing (a wake) at the moment of shutdown (a cancel) must not swallow the cancel."""
    import asyncio

    async with daemon.started():
        task = asyncio.create_task(daemon.jobs.run())
        await asyncio.sleep(0.05)
        daemon.jobs.wake.set()
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=2)
    assert done and task.cancelled()
