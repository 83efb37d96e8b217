"""HeyGen's render cap shared by two real daemons on one PostgreSQL and one key.

The fake HeyGen's account renders 10 at once, our `account_concurrency` is 2 on each node: a
per-node count would let the two nodes have 4 rendering together; counted from the store, the
fake (which records how many it was rendering at each create) never sees more than 2.
"""

from __future__ import annotations

import asyncio
from contextlib import nullcontext
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from avatar_daemon.store import Store
from avatar_daemon.store.contract import NewJob
from avatar_daemon.testing import wait_until
from tests.conftest import REPO, fixture_bytes
from tests.fake_heygen import API_KEY, FakeHeyGen
from tests.postgres import scratch_database

pytestmark = pytest.mark.timeout(240)

FORMATS = ["tiktok", "youtube", "reels", "shorts", "landscape-720", "portrait-720"]
FINAL = ("completed", "failed", "timeout", "cancelled")


@pytest.fixture
async def fake(tmp_path):
    media = tmp_path / "fake-media"
    media.mkdir()
    server = FakeHeyGen.knowing_bundled_profiles(media, render_seconds=0.5, concurrency=10)
    async with server.serve():
        yield server


def node_config(tmp: Path, name: str, database: str, fake: FakeHeyGen) -> Path:
    own = tmp / name
    own.mkdir()
    heygen = {"base_url": fake.url, "upload_url": fake.url, "account_concurrency": 2, "max_concurrency": 3,
              "poll_first_seconds": 0.2, "render_ratio": 0.05, "poll_max_interval_seconds": 0.5,
              "backoff_seconds": 0.01, "retry_after_cap_seconds": 1.0}
    path = own / "daemon.yaml"
    path.write_text(json.dumps({
        "node_id": name, "data_dir": str(own / "var"), "database": database,
        "inbox": {"path": str(own / "inbox"), "settle_seconds": 0.05, "force_polling": True, "poll_ms": 100},
        "jobs": {"output_dir": str(tmp / "videos")}, "http": {"enabled": False},
        "default_renderer": "heygen", "default_formats": FORMATS, "notifiers": ["log"],
        "plugins": {"only": ["hackernews", "research_job", "template_writer", "formats", "log_notifier", "heygen"],
                    "settings": {"heygen": heygen}},
    }))
    return path


async def start_node(config: Path, log: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "avatar_daemon", "run", "--config", str(config), cwd=REPO,
        env={**os.environ, "HEYGEN_API_KEY": API_KEY}, stdout=asyncio.subprocess.DEVNULL, stderr=log.open("w"))
    await wait_until(lambda: "avatar-daemon running" in log.read_text() or proc.returncode is not None,
                     timeout=90, interval=0.1)
    assert proc.returncode is None, log.read_text()
    return proc


async def test_two_nodes_on_one_key_never_render_more_than_the_cap_together(tmp_path, fake):
    with scratch_database("heygen_cap") as url:
        configs = [node_config(tmp_path, name, url, fake) for name in ("n1", "n2")]
        logs = [tmp_path / f"{c.parent.name}.log" for c in configs]
        nodes = list(await asyncio.gather(*[start_node(c, log) for c, log in zip(configs, logs)]))
        try:
            for config in configs:  # one research file per node: six jobs each, any node may take any
                research = json.loads(fixture_bytes("hn_algolia.json"))
                research["query"] = f"{research['query']} {config.parent.name}"  # not the same research twice
                (config.parent / "inbox/hn.json").write_text(json.dumps(research))
            async with Store.open(url, migrate=False) as store:
                async def all_ended():
                    failed = [p.name for c in configs for p in (c.parent / "inbox/failed").glob("*")]
                    assert not failed, "\n".join(log.read_text()[-3000:] for log in logs)
                    counts = await store.counts()
                    return sum(counts.values()) == 12 and sum(counts.get(s, 0) for s in FINAL) == 12

                try:
                    await wait_until(all_ended, timeout=90, interval=0.2)
                except TimeoutError:
                    tails = "\n".join(log.read_text()[-3000:] for log in logs)
                    raise AssertionError(f"jobs not ended: {await store.counts()}; HeyGen calls "
                                         f"{dict(fake.calls)}\n{tails}") from None
                jobs = await store.jobs(limit=100)
                submitters = {e.node_id for j in jobs for e in await store.events(j.id)
                              if e.state.value == "submitting"}
        finally:
            for proc in nodes:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
            codes = await asyncio.gather(*[asyncio.wait_for(p.wait(), 60) for p in nodes])
        text = "\n".join(log.read_text() for log in logs)
    assert codes == [0, 0], text[-3000:]
    assert [j.status for j in jobs] == ["completed"] * 12, [j.error for j in jobs]
    assert submitters == {"n1", "n2"}  # both nodes created renders
    assert len(fake.videos) == 12 and fake.calls["create_video"] == 12  # each once, none refused
    assert fake.max_rendering_seen == 2, "the cap is 2 for both nodes together"
    assert "Traceback" not in text, text[-3000:]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_remote_ids_are_the_unended_jobs_ids_on_every_node(tmp_path, backend):
    """The store's side of the count: every comma-separated id of a renderer's jobs not ended."""
    with scratch_database("remote_ids") if backend == "postgresql" else nullcontext(tmp_path / "db.sqlite3") as url:
        async with Store.open(url, node_id="n1") as one, Store.open(url, node_id="n2") as two:
            ids = await one.add_jobs([NewJob("heygen", "tiktok", "sarah", f"v{i}", {}) for i in range(4)]
                                     + [NewJob("local", "tiktok", "sarah", "other", {})])
            first = await one.claim(ids[0])
            second = await two.claim(ids[1])
            done = await two.claim(ids[2])
            for job, remote in ((first, "a1,a2"), (second, "b1,"), (done, "c1")):
                await (one if job.id == ids[0] else two).record_event(_event(job.id, "rendering", remote),
                                                                      fence=job.fence)
            await two.record_event(_event(done.id, "completed", "c1"), result={"video": "x"}, fence=done.fence)
            local = await one.claim(ids[4])
            await one.record_event(_event(local.id, "rendering", "l1"), fence=local.fence)
            assert await one.remote_ids("heygen") == await two.remote_ids("heygen") == {"a1", "a2", "b1"}
            # A part one node saw finish leaves every node's count at once, while its job goes on; marks
            # for an id twice, one of an ended job, another renderer's or a prefix change nothing.
            await two.remote_finished("heygen", "a1")
            await two.remote_finished("heygen", "a1")
            for renderer, remote in (("heygen", "c1"), ("heygen", "l1"), ("local", "a2"), ("heygen", "a"), ("heygen", "b")):
                await one.remote_finished(renderer, remote)
            assert await one.remote_ids("heygen") == await two.remote_ids("heygen") == {"a2", "b1"}
            assert (await one.job(first.id)).external_id == "a1,a2"  # the job still has both parts
            await one.record_event(_event(first.id, "rendering", "a1,a2,a3"), fence=first.fence)
            assert await two.remote_ids("heygen") == {"a2", "a3", "b1"}
            assert await one.remote_ids("local") == {"l1"}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_part_one_node_sees_finish_frees_its_render_on_every_node(tmp_path, backend):
    """The count a node waits on drops when another node's status look finds a part finished, not
    only when the part's job ends: a split job's finished parts no longer hold renders elsewhere."""
    from avatar_daemon_plugins.heygen.render_slots import RenderSlots

    with scratch_database("remote_done") if backend == "postgresql" else nullcontext(tmp_path / "db.sqlite3") as url:
        async with Store.open(url, node_id="n1") as one, Store.open(url, node_id="n2") as two:
            (job_id,) = await one.add_jobs([NewJob("heygen", "tiktok", "sarah", "split", {})])
            job = await one.claim(job_id)
            await one.record_event(_event(job.id, "rendering", "p1,p2"), fence=job.fence)
            here, there = RenderSlots(2, 60.0, one), RenderSlots(2, 60.0, two)
            assert await here.busy() == await there.busy() == 2
            await there.seen("p1", "processing")
            assert await here.busy() == 2
            await there.seen("p1", "completed")
            assert await here.busy() == await there.busy() == 1
            assert (await one.job(job_id)).status.value == "rendering"


def _event(job_id: int, state: str, remote: str):
    from avatar_daemon.models import JobEvent, JobState

    return JobEvent(job_id=job_id, state=JobState(state), message=state, data={"external_id": remote})
