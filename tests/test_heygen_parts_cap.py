"""A job whose script is split into more HeyGen parts than the key's render cap, in real daemons.

HeyGen renders `account_concurrency` videos at once; a job of several parts creates them one
after another, so once its own first parts fill the cap the next create has to wait for one of
them to finish. Nobody else looks at a job that is still submitting, so the job must notice its
own parts finishing: else it waits on itself until the deadline. Checked with one daemon on
SQLite and two daemons on one PostgreSQL (where either may submit).
"""

from __future__ import annotations

import contextlib

import pytest

from avatar_daemon.testing import running, wait_for_final
from tests.builtins.test_heygen_daemon import heygen_daemon, ingest, webhook_registered
from tests.fake_heygen import API_KEY, FakeHeyGen
from tests.postgres import scratch_database

pytestmark = pytest.mark.timeout(120)

CAP = 2
LIMIT = 150  # characters per part: the fixture's script is split into well over CAP parts


@pytest.fixture
async def fake(tmp_path, monkeypatch):
    """HeyGen rendering CAP videos at once for the key, as our account_concurrency says."""
    monkeypatch.setenv("HEYGEN_API_KEY", API_KEY)
    monkeypatch.delenv("HEYGEN_WEBHOOK_SECRET", raising=False)
    media = tmp_path / "fake-media"
    media.mkdir()
    server = FakeHeyGen.knowing_bundled_profiles(media, render_seconds=0.3, concurrency=CAP)
    async with server.serve():
        yield server


def assert_made_once_within_the_cap(fake, daemons, jobs):
    parts = [v for job in jobs for v in job.external_id.split(",")]
    assert len(parts) > CAP  # the point of the test: more parts than renders at once
    assert sorted(parts) == sorted(fake.videos), "each part made once, no stray video"
    assert fake.calls["create_video"] == len(parts)  # never refused, never repeated
    assert sum(d.renderers["heygen"].client.calls["create_video", "429"] for d in daemons) == 0
    assert fake.max_rendering_seen == CAP


@pytest.mark.parametrize("webhook", [True, False], ids=["webhook", "polling"])
async def test_a_job_with_more_parts_than_the_cap_completes(tmp_path, fake, webhook):
    daemon = heygen_daemon(tmp_path, fake, webhook=webhook, account_concurrency=CAP, text_limit=LIMIT,
                           deadline_seconds=20)
    async with running(daemon):
        if webhook:
            await webhook_registered(daemon)
        (job_id,) = await ingest(daemon)
        state = await wait_for_final(daemon, job_id, timeout=60)
        job = await daemon.store.job(job_id)
    assert state == "completed", job.error
    assert_made_once_within_the_cap(fake, [daemon], [job])


async def test_two_such_jobs_on_one_daemon_both_complete(tmp_path, fake):
    """Each job holds part of the cap while it waits: neither may wait for the other for ever."""
    daemon = heygen_daemon(tmp_path, fake, account_concurrency=CAP, text_limit=LIMIT, deadline_seconds=20)
    async with running(daemon):
        await webhook_registered(daemon)
        ids = await ingest(daemon, formats=("tiktok", "youtube"))
        states = [await wait_for_final(daemon, i, timeout=60) for i in ids]
        jobs = [await daemon.store.job(i) for i in ids]
    assert states == ["completed"] * 2, [j.error for j in jobs]
    assert_made_once_within_the_cap(fake, [daemon], jobs)


async def test_two_daemons_on_postgresql_share_the_cap_and_finish_split_jobs(tmp_path, fake):
    with scratch_database("heygen_parts") as url:
        daemons = [heygen_daemon(tmp_path / name, fake, webhook=False, account_concurrency=CAP, text_limit=LIMIT,
                                 deadline_seconds=20, settings={"database": url, "node_id": name})
                   for name in ("n1", "n2")]
        async with contextlib.AsyncExitStack() as stack:
            for d in daemons:
                await stack.enter_async_context(running(d))
            ids = await ingest(daemons[0], formats=("tiktok", "youtube", "reels"))
            states = [await wait_for_final(daemons[0], i, timeout=90) for i in ids]
            jobs = [await daemons[0].store.job(i) for i in ids]
    assert states == ["completed"] * 3, [j.error for j in jobs]
    assert_made_once_within_the_cap(fake, daemons, jobs)
