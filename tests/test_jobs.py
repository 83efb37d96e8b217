"""The job runner: states persisted and published, failures and cancels, restart requeue, retries."""

import asyncio
import hashlib
import os

import aiohttp
import av
import pytest
import yaml

from avatar_daemon.access import Caller
from avatar_daemon.errors import UnknownNameError
from avatar_daemon.jobs import NotRetryable
from avatar_daemon.models import RemoteWait
from avatar_daemon.planning import VideoSettings
from avatar_daemon.store import NewJob
from avatar_daemon.testing import (
    FakeRenderer, RecordingPlugin, fail_on_a_full_disk_then_retry, make_daemon, make_settings, running,
    wait_for_final, wait_until,
)
from tests.builtins.test_heygen_daemon import fake, heygen_daemon, ingest  # noqa: F401  (fake: a fixture)
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
            await asyncio.sleep(0.02)
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
    async with daemon.started():
        task = asyncio.create_task(daemon.jobs.run())
        await asyncio.sleep(0.05)
        daemon.jobs.wake.set()
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=2)
    assert done and task.cancelled()


# ---- retry: one core path for the command line, HTTP and Slack ------------------------------------


async def test_retry_queues_an_ended_job_again_as_a_new_try(tmp_path):
    plugin = RecordingPlugin(FakeRenderer(fail="the avatar is on holiday"))
    daemon = make_daemon(tmp_path, plugins=[plugin])
    async with running(daemon):
        (job_id,) = await _queue(daemon)
        assert await wait_for_final(daemon, job_id) == "failed"
        with pytest.raises(PermissionError, match="belongs to another workspace"):
            await daemon.jobs.retry(job_id, Caller("eve", "W2", "U9", "free"))  # an inbox video: admins only
        plugin.renderer.fail = None  # the cause is gone
        job = await daemon.jobs.retry(job_id)
        assert job.id == job_id and job.status == "queued" and job.error is None
        assert await wait_for_final(daemon, job_id) == "completed"
        job = await daemon.store.job(job_id)
        events = await daemon.store.events(job_id)
        with pytest.raises(NotRetryable, match=f"video {job_id} completed; there is nothing to retry"):
            await daemon.jobs.retry(job_id)
        with pytest.raises(UnknownNameError, match="no video 999"):
            await daemon.jobs.retry(999)
    assert [r.retry for r in plugin.renderer.requests] == [0, 1]  # the renderer knows a retry from a restart
    assert job.attempts == 2 and job.result["video"].endswith("video.txt")
    states = [(e.state.value, e.data.get("retry")) for e in events]
    assert states[0] == ("queued", None) and ("failed", None) in states and states[-1] == ("completed", None)
    retried = next(e for e in events if e.data.get("retry"))
    assert retried.data == {"retry": 1, "previous": "failed", "error": "the avatar is on holiday",
                            "by": "command line"}
    assert retried.message == "queued again (retry 1) after it failed"
    assert "queued" in plugin.notifier.states(job_id)[1:]  # notifiers heard of the new try


async def test_a_job_that_has_not_ended_cannot_be_retried(tmp_path):
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(FakeRenderer(seconds=5))])
    async with running(daemon):
        (job_id,) = await _queue(daemon)
        await wait_until(lambda: job_id in daemon.jobs.running)
        with pytest.raises(NotRetryable, match="is rendering, not ended"):
            await daemon.jobs.retry(job_id)
        assert await daemon.jobs.cancel(job_id)
        assert (await daemon.jobs.retry(job_id)).status == "queued"  # a cancelled video may be tried again


async def test_http_retry_follows_the_callers_access(tmp_path):
    tokens = {"alice": "tok-alice-W1", "eve": "tok-eve-W2"}
    (tmp_path / "users.yaml").write_text(yaml.safe_dump({"workspaces": {"W1": {}, "W2": {}}, "api_tokens": [
        {"name": n, "sha256": hashlib.sha256(t.encode()).hexdigest(), "workspace": f"W{i + 1}", "user": "U1"}
        for i, (n, t) in enumerate(tokens.items())]}))
    plugin = RecordingPlugin(FakeRenderer(fail="no voice today"))
    daemon = make_daemon(tmp_path, plugins=[plugin], settings=make_settings(tmp_path, users_file="users.yaml"))
    async with running(daemon), aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
        async def call(method, path, who="alice", **kw):
            async with http.request(method, path, headers={"Authorization": f"Bearer {tokens[who]}"}, **kw) as r:
                return r.status, await r.json()

        status, made = await call("POST", "/videos", json={"script_title": "Hi", "script_content": "Hello there."})
        video_id = made["videos"][0]["id"]
        assert await wait_for_final(daemon, video_id) == "failed"
        assert (await call("POST", f"/videos/{video_id}/retry", who="eve"))[0] == 403
        assert (await call("POST", "/videos/999/retry"))[0] == 404
        plugin.renderer.fail = None
        status, body = await call("POST", f"/videos/{video_id}/retry")
        assert status == 202 and body["id"] == video_id and body["status"] == "queued" and body["error"] is None
        assert await wait_for_final(daemon, video_id) == "completed"
        status, body = await call("POST", f"/videos/{video_id}/retry")
    assert status == 409 and body["error"] == f"video {video_id} completed; there is nothing to retry"
    assert len(plugin.renderer.requests) == 2


async def test_a_full_disk_fails_the_job_cleanly_and_a_retry_makes_it_once_there_is_room(tmp_path):
    """Real ENOSPC from the kernel: the MP4's temporary name points at /dev/full, the device that is always full."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")

    settings = make_settings(tmp_path, default_renderer="local", plugins={"settings": {"local": {"preset": "ultrafast"}}})
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin()], settings=settings)
    async with daemon.started():
        done = await daemon.pipeline.ingest(b"A full disk, then room again.", "full.txt", ".txt",
                                            overrides=VideoSettings(formats=["portrait-720"]))
        (job_id,) = done.job_ids
        out = daemon.settings.jobs.output_dir / f"job-{job_id}"
        failed, left, job, result = await fail_on_a_full_disk_then_retry(daemon, job_id, "video.mp4.part")
    assert failed.status == "failed" and left == []
    assert failed.error == f"cannot write {out / 'video.mp4'}: no space left on device; nothing was kept"
    assert job.status == "completed" and job.attempts == 2, job.error
    with av.open(str(result.video)) as box:
        assert box.streams.video and box.streams.audio
    assert sorted(p.name for p in out.iterdir()) == ["captions.srt", "captions.vtt", "metadata.json",
                                                     "thumbnail.jpg", "video.mp4"]


async def test_a_heygen_job_waiting_remotely_holds_no_slot(tmp_path, fake):
    """max_concurrency 1: while one HeyGen render waits at HeyGen, the next is submitted and a local one runs."""
    fake.render_seconds = 3.0
    local = FakeRenderer(seconds=0.2, max_concurrency=1)
    daemon = heygen_daemon(tmp_path, fake, webhook=False, max_concurrency=1, plugins=[RecordingPlugin(local)])
    async with running(daemon):
        first, second = await ingest(daemon, formats=("tiktok", "youtube"))
        await wait_until(lambda: len(fake.videos) == 2, timeout=10)  # one slot, two submitted
        assert not any(v.status in ("completed", "failed") for v in fake.videos.values())
        job = await daemon.store.job(first)
        assert job.status == "waiting_remote" and job.claimed_by is None and job.next_check_at
        (local_job,) = await daemon.store.add_jobs([NewJob("fake", "tiktok", "sarah", "local", {})], job.research_job_id)
        daemon.jobs.queued([local_job])
        assert await wait_for_final(daemon, local_job) == "completed"
        assert (await daemon.store.job(first)).status == "waiting_remote"  # still at HeyGen meanwhile
        assert [await wait_for_final(daemon, i) for i in (first, second)] == ["completed", "completed"]
        events = await daemon.store.events(first)
    assert fake.calls["create_video"] == 2
    waits = [e for e in events if e.state.value == "waiting_remote"]
    assert waits and all(e.node_id == daemon.node_id for e in events)
    assert "next_check_at" in waits[0].data and waits[0].message.startswith("waiting for HeyGen")


class RemoteFake(FakeRenderer):
    """A renderer that WaitsRemotely: submitted at once, finished at its `ready`-th check (then 'downloaded')."""

    name = "remote"

    def __init__(self, ready: int = 2, timeout: float = 60.0):
        super().__init__(max_concurrency=1)
        self.ready, self.timeout_seconds = ready, timeout
        self.submits, self.checks, self.whole = 0, [], 0

    async def render(self, request, progress):
        self.whole += 1
        return await super().render(request, progress)

    async def submit(self, request, progress):
        self.submits += 1
        await progress.submitted(f"remote-{request.job_id}")
        return RemoteWait(check_in=0.1, percent=5, message="sent")

    async def check(self, request, progress, waited):
        assert request.external_id == f"remote-{request.job_id}"
        self.checks.append(waited)
        if len(self.checks) < self.ready:
            return RemoteWait(check_in=0.1, percent=50, message="still rendering")
        return await FakeRenderer.render(self, request, progress)


SPOKEN = {"script": {"title": "remote", "text": "Said somewhere else.", "estimated_seconds": 2.0}}


async def _remote_job(daemon):
    (job_id,) = await daemon.store.add_jobs([NewJob("remote", "tiktok", "sarah", "remote", SPOKEN)])
    daemon.jobs.queued([job_id])
    return job_id


async def test_a_remote_renders_timeout_runs_from_its_submit_across_checks(tmp_path):
    renderer = RemoteFake(ready=10**6, timeout=1.0)
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(renderer)])
    async with running(daemon):
        job_id = await _remote_job(daemon)
        assert await wait_for_final(daemon, job_id) == "timeout"
        job = await daemon.store.job(job_id)
        events = await daemon.store.events(job_id)
    submitted = next(e.at for e in events if e.state.value == "waiting_remote")
    ended = events[-1].at
    assert 1.0 <= (ended - submitted).total_seconds() < 2.0, events
    assert len(renderer.checks) >= 3 and max(renderer.checks) < 1.0 and renderer.whole == 0
    assert renderer.submits == 1 and "took longer than 1 s" in job.error


async def test_a_remote_render_finishes_by_checks_and_a_cancel_stops_a_waiting_one(tmp_path):
    renderer = RemoteFake(ready=3)
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(renderer)])
    async with running(daemon):
        job_id = await _remote_job(daemon)
        assert await wait_for_final(daemon, job_id) == "completed"
        job = await daemon.store.job(job_id)
        assert (renderer.submits, len(renderer.checks), renderer.whole) == (1, 3, 0)
        assert job.result["video"].endswith("video.txt") and job.external_id == f"remote-{job_id}"
        assert job.result["render_seconds"] >= renderer.checks[-1] - 0.01  # from the submit (rounded to 10 ms), not the last check
        renderer.ready = 10**6
        second = await _remote_job(daemon)
        await wait_until(lambda: len(renderer.checks) >= 4)
        assert await daemon.jobs.cancel(second)
        checks = len(renderer.checks)
        await asyncio.sleep(0.4)
        assert (await daemon.store.job(second)).status == "cancelled" and len(renderer.checks) <= checks + 1


async def test_the_command_line_renders_a_remote_job_whole_in_one_task(tmp_path):
    renderer = RemoteFake()
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(renderer)])
    async with daemon.started():
        (job_id,) = await daemon.store.add_jobs([NewJob("remote", "tiktok", "sarah", "remote", SPOKEN)])
        result = await daemon.jobs.execute(await daemon.store.claim(job_id))
        job = await daemon.store.job(job_id)
    assert result.video.name == "video.txt" and job.status == "completed"
    assert (renderer.whole, renderer.submits) == (1, 0)
