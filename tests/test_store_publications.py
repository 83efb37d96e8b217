"""The publications table on both backends: one row per (video, platform, account), claims, fences, figures."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from avatar_daemon.models import JobEvent, JobState
from avatar_daemon.store import NewPublication
from tests.test_store import T0, clock, database, job, store  # noqa: F401  (fixtures)
from tests.postgres import postgres_database  # noqa: F401  (a fixture)


async def finished(store) -> int:
    (job_id,) = await store.add_jobs([job()])
    await store.record_event(JobEvent(job_id=job_id, state=JobState.completed, percent=100, message="done"),
                             result={"video": "/nowhere/video.mp4"})
    return job_id


async def test_asking_twice_makes_one_row_and_a_failed_one_is_queued_again(store):
    job_id = await finished(store)
    first = await store.request_publications(job_id, [NewPublication("loopvid", "main", {"privacy": "private"}),
                                                      NewPublication("loopvid", "second")], "campaign c")
    again = await store.request_publications(job_id, [NewPublication("loopvid", "main", {"privacy": "public"})],
                                             "slack:U1")
    assert [created for _, created in first] == [True, True] and again[0][1] is False
    row = again[0][0]
    assert (row.id, row.state, row.options, row.requested_by) == (first[0][0].id, "pending", {"privacy": "private"},
                                                                 "campaign c")
    assert [p.account for p in await store.publications(job_id)] == ["main", "second"]

    pub = await store.claim_publication(["loopvid"], "node-a")
    await store.save_publication(pub.id, pub.fence, state="uploading", facts={"session": "s1", "offset": 5})
    await store.end_publication(pub.id, pub.fence, "failed", error="the platform said no")
    (retried, created), = await store.request_publications(job_id, [NewPublication("loopvid", "main")], "api:bo")
    assert created and (retried.state, retried.error, retried.requested_by) == ("pending", None, "api:bo")
    assert retried.facts == {"session": "s1", "offset": 5}  # the publisher finds what the platform may hold


async def test_two_triggers_racing_make_one_row(store):
    job_id = await finished(store)
    results = await asyncio.gather(*[store.request_publications(job_id, [NewPublication("loopvid", "main")], f"t{i}")
                                     for i in range(8)])
    assert len({r[0][0].id for r in results}) == 1
    assert sum(r[0][1] for r in results) == 1
    assert len(await store.publications(job_id)) == 1


async def test_a_claim_is_leased_and_fenced_and_another_node_resumes_from_the_saved_facts(store, clock):
    job_id = await finished(store)
    await store.request_publications(job_id, [NewPublication("loopvid", "main")], "t")
    assert await store.claim_publication(["otherplatform"], "node-a") is None
    a = await store.claim_publication(["loopvid"], "node-a", lease_seconds=30)
    assert (a.claimed_by, a.attempts, a.facts) == ("node-a", 1, {})
    assert await store.claim_publication(["loopvid"], "node-b", lease_seconds=30) is None  # held
    saved = await store.save_publication(a.id, a.fence, state="uploading", facts={"session": "s1", "offset": 262144})
    saved = await store.save_publication(a.id, a.fence, facts={"offset": 524288}, percent=40)
    assert (saved.state, saved.facts, saved.upload_offset, saved.percent) == (
        "uploading", {"session": "s1", "offset": 524288}, 524288, 40)
    clock.advance(10)
    assert await store.extend_publication_lease(a.id, a.fence, 30)
    clock.advance(31)  # node a went quiet: its lease ran out
    b = await store.claim_publication(["loopvid"], "node-b", lease_seconds=30)
    assert (b.id, b.claimed_by, b.attempts, b.state, b.facts) == (a.id, "node-b", 2, "uploading",
                                                                  {"session": "s1", "offset": 524288})
    # node a's writes no longer land
    assert await store.save_publication(a.id, a.fence, facts={"offset": 1}) is None
    assert not await store.extend_publication_lease(a.id, a.fence, 30)
    assert await store.end_publication(a.id, a.fence, "published", remote_id="x") is None
    assert await store.defer_publication(a.id, a.fence, clock() + timedelta(hours=1), "quota") is None
    done = await store.end_publication(b.id, b.fence, "published", remote_id="v1", url="https://p/v1",
                                       message="published")
    assert (done.state, done.remote_id, done.url, done.percent, done.claimed_by) == (
        "published", "v1", "https://p/v1", 100, None)
    assert done.published_at is not None
    assert await store.claim_publication(["loopvid"], "node-c") is None  # ended: never claimed again
    assert await store.save_publication(b.id, b.fence, facts={"late": True}) is None


async def test_a_deferred_publication_waits_until_its_time(store, clock):
    job_id = await finished(store)
    await store.request_publications(job_id, [NewPublication("loopvid", "main")], "t")
    pub = await store.claim_publication(["loopvid"], "node-a")
    until = clock() + timedelta(hours=7)
    waiting = await store.defer_publication(pub.id, pub.fence, until, "waiting for the quota")
    assert (waiting.state, waiting.claimed_by, waiting.message, waiting.failures) == ("pending", None,
                                                                                       "waiting for the quota", 0)
    assert await store.next_publication_at(["loopvid"]) == until
    assert await store.claim_publication(["loopvid"], "node-a") is None
    clock.advance(7 * 3600)
    again = await store.claim_publication(["loopvid"], "node-b")
    assert again.attempts == 2
    failed_once = await store.defer_publication(again.id, again.fence, clock(), "HTTP 503", failed=True)
    assert failed_once.failures == 1


async def test_a_restart_releases_its_own_claims_only(store):
    job_id = await finished(store)
    await store.request_publications(job_id, [NewPublication("loopvid", "a"), NewPublication("loopvid", "b")], "t")
    mine = await store.claim_publication(["loopvid"], "node-a")
    theirs = await store.claim_publication(["loopvid"], "node-b")
    assert await store.release_publications("node-a") == [mine.id]
    assert (await store.publication(theirs.id)).claimed_by == "node-b"
    assert (await store.claim_publication(["loopvid"], "node-c")).id == mine.id


async def test_platform_figures_count_in_the_analytics_as_their_latest_value(store):
    job_id = await finished(store)
    await store.add_analytics(job_id, "download", "api")
    await store.add_analytics(job_id, "view", "link")
    (pub, _), = await store.request_publications(job_id, [NewPublication("loopvid", "main")], "t")
    pub = await store.claim_publication(["loopvid"], "node-a")
    await store.end_publication(pub.id, pub.fence, "published", remote_id="v1")
    await store.record_figures(pub.id, views=10, likes=2, comments=1)
    await store.record_figures(pub.id, views=250, likes=7, comments=3)  # replaces, never adds
    totals = await store.analytics(None)
    (video,) = totals["by_video"]
    assert (video["key"], video["view"], video["download"], video["like"], video["comment"]) == (job_id, 251, 1, 7, 3)
    by_platform = {r["key"]: r for r in totals["by_platform"]}
    assert by_platform["loopvid"]["view"] == 250 and by_platform["link"]["view"] == 1
    assert (await store.analytics("another-workspace"))["by_video"] == []
