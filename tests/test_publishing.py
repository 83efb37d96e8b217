"""Publishing end to end: a real daemon, a real store, a real publisher posting to a platform on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
import yaml

from avatar_daemon.accounts import Accounts
from avatar_daemon.errors import InvalidRequest, UnknownNameError
from avatar_daemon.events import EventBus
from avatar_daemon.models import JobEvent, JobState
from avatar_daemon.publications import Publications, probe_video
from avatar_daemon.registry import Registry
from avatar_daemon.settings import PublishingSettings
from avatar_daemon.store import NewJob, Store
from avatar_daemon.testing import RecordingPlugin, make_daemon, make_settings, running, wait_for_final, wait_until
from tests.conftest import fixture_bytes
from tests.fake_platform import FakePlatform, LoopbackPublisher, PublishingPlugin
from tests.postgres import empty_tables, postgres_database  # noqa: F401  (a fixture)
from tests.test_store import Clock

TOKEN = "access-token-1"
PUBLISHING = {"accounts": {"loop-main": {"platform": "loopvid", "channel": "UC1"}},
              "poll_seconds": 0.05, "retry_seconds": 0.05}


@pytest.fixture
async def platform():
    async with FakePlatform(token=TOKEN).serve() as p:
        yield p


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv("AVATAR_DAEMON_LOOP_MAIN_TOKEN", TOKEN)


def publishing_daemon(tmp_path, platform, **publishing):
    recording = RecordingPlugin()
    publisher = LoopbackPublisher(platform.url)
    settings = make_settings(tmp_path, publishing={**PUBLISHING, **publishing})
    daemon = make_daemon(tmp_path, plugins=[recording, PublishingPlugin(publisher)], settings=settings)
    return daemon, recording, publisher


async def a_finished_video(daemon) -> int:
    job_ids = (await daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "hn.json", ".json")).job_ids
    assert await wait_for_final(daemon, job_ids[0]) is JobState.completed
    return job_ids[0]


def publication_events(recording, job_id):
    return [e for e in recording.notifier.events if e.job_id == job_id and e.publication is not None]


async def published(daemon, job_id):
    async def done():
        rows = await daemon.publishing.for_video(job_id)
        return rows if rows and all(r["state"] in ("published", "failed") for r in rows) else None
    return await wait_until(done, timeout=30)


async def test_a_campaign_and_a_click_on_the_same_video_publish_it_once(tmp_path, platform, caplog):
    caplog.set_level(logging.DEBUG)
    daemon, recording, publisher = publishing_daemon(tmp_path, platform)
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "social.yaml").write_text(
        "name: social\nsources: [{source: hackernews}]\nschedule: {every: daily}\n"
        "quality: {min_insights: 1, max_age_hours: 1000000}\nauto_post: [loopvid]\n"
        "publish: {privacy: unlisted, made_for_kids: false}\n")
    async with running(daemon):
        await wait_until(lambda: daemon.campaigns.path_of("social"))
        await daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "hn.json", ".json")
        (job_id,) = (await daemon.campaigns.run_now("social")).job_ids
        assert await wait_for_final(daemon, job_id) is JobState.completed
        clicked = await daemon.publishing.request(job_id, ["loopvid"], by="studio:alice")  # the click, as it lands
        (row,) = await published(daemon, job_id)
        again = await daemon.publishing.request(job_id, ["loopvid"], by="slack:U1")
        job = await daemon.store.job(job_id)
    assert len(platform.videos) == 1 and platform.starts == 1
    assert len(clicked) == 1 and clicked[0]["id"] == row["id"] == again[0]["id"]
    (video,) = platform.videos.values()
    assert (row["state"], row["remote_id"], row["url"]) == ("published", video["id"], f"{platform.url}/watch/{video['id']}")
    assert row["requested_by"] == "campaign social"
    assert video["privacy"] == "unlisted" and video["made_for_kids"] is False  # the campaign's publish block
    assert video["bytes"] == open(job.result["video"], "rb").read()
    events = publication_events(recording, job_id)
    assert [e.publication["state"] for e in events][-1] == "published"
    assert events[-1].publication["url"] == row["url"] and row["url"] in events[-1].message
    assert all(e.state is JobState.completed for e in events)  # the job's own state, unchanged
    assert recording.notifier.states(job_id).count("completed") == 1 + len(events)
    assert any(n.kind == "publish.private" and "loopvid" in n.message for n in recording.notifier.notices)
    assert TOKEN not in caplog.text


async def test_video_text_and_shape_reach_the_publisher(tmp_path, platform):
    daemon, _, publisher = publishing_daemon(tmp_path, platform)
    async with running(daemon):
        job_id = await a_finished_video(daemon)
        job = await daemon.store.job(job_id)
        script = await daemon.jobs.script_for(job)
        await daemon.publishing.request(job_id, ["loopvid"], by="test")
        await published(daemon, job_id)
        video = await daemon.publishing.video_of(job_id)
    (posted,) = platform.videos.values()
    assert posted["title"] == script.title and posted["description"] == script.description
    assert posted["tags"] == script.hashtags
    assert (video.width, video.height) == (1080, 1920)  # the tiktok format, the fake render being no MP4
    assert posted["short"] is True and posted["privacy"] == "private"


async def test_a_quota_makes_the_publication_wait_then_it_publishes(tmp_path, platform):
    platform.quota_refusals = 1
    platform.quota_reset = datetime.now(timezone.utc) + timedelta(seconds=1.5)
    daemon, recording, _ = publishing_daemon(tmp_path, platform)
    async with running(daemon):
        job_id = await a_finished_video(daemon)
        await daemon.publishing.request(job_id, ["loopvid"], by="test")

        async def waiting():
            (row,) = await daemon.publishing.for_video(job_id)
            return row if row["not_before"] else None
        row = await wait_until(waiting)
        assert row["state"] == "pending" and row["error"] is None
        assert "quota" in row["message"] and datetime.fromisoformat(row["not_before"]) == platform.quota_reset
        assert platform.starts == 1
        (row,) = await published(daemon, job_id)
    assert row["state"] == "published" and platform.starts == 2 and len(platform.videos) == 1
    assert datetime.now(timezone.utc) >= platform.quota_reset
    assert any("quota" in e.message for e in publication_events(recording, job_id))


async def test_a_refusal_fails_the_publication_with_the_platforms_reason(tmp_path, platform):
    platform.refuse = "The video title is too long"
    daemon, recording, _ = publishing_daemon(tmp_path, platform)
    async with running(daemon):
        job_id = await a_finished_video(daemon)
        await daemon.publishing.request(job_id, ["loopvid"], by="test")
        (row,) = await published(daemon, job_id)
    assert row["state"] == "failed" and "The video title is too long" in row["error"]
    assert platform.videos == {}
    (last,) = [e for e in publication_events(recording, job_id) if e.publication["state"] == "failed"]
    assert "The video title is too long" in last.message


async def test_a_transient_failure_is_tried_again_later(tmp_path, platform):
    platform.busy = 2
    daemon, _, _ = publishing_daemon(tmp_path, platform)
    async with running(daemon):
        job_id = await a_finished_video(daemon)
        await daemon.publishing.request(job_id, ["loopvid"], by="test")
        (row,) = await published(daemon, job_id)
    assert row["state"] == "published" and platform.starts == 3 and len(platform.videos) == 1


async def test_transient_failures_in_a_row_give_up_with_the_reason(tmp_path, platform):
    platform.busy = 100
    daemon, _, _ = publishing_daemon(tmp_path, platform, max_failures=3)
    async with running(daemon):
        job_id = await a_finished_video(daemon)
        await daemon.publishing.request(job_id, ["loopvid"], by="test")
        (row,) = await published(daemon, job_id)
    assert row["state"] == "failed" and "HTTP 503" in row["error"] and "3 tries" in row["error"]
    assert platform.starts == 3


async def test_requests_that_cannot_be_served_are_refused_with_a_sentence(tmp_path, platform):
    daemon, _, _ = publishing_daemon(tmp_path, platform, accounts={
        "loop-main": {"platform": "loopvid"}, "loop-b": {"platform": "loopvid"}})
    async with running(daemon):
        (queued,) = await daemon.store.add_jobs([NewJob(renderer="nothing", format="tiktok", avatar_id="sarah",
                                                        title="t", request={})])
        with pytest.raises(InvalidRequest, match=f"video {queued} is queued: only a finished video"):
            await daemon.publishing.request(queued, ["loopvid"], by="t")
        job_id = await a_finished_video(daemon)
        with pytest.raises(UnknownNameError, match=r"no publisher for platform 'vimeo' \(known: (.*, )?loopvid(, .*)?\)"):
            await daemon.publishing.request(job_id, ["vimeo"], by="t")
        with pytest.raises(UnknownNameError, match="loopvid has 2 accounts .*name one"):
            await daemon.publishing.request(job_id, ["loopvid"], by="t")
        with pytest.raises(UnknownNameError, match="no account named 'nope'"):
            await daemon.publishing.request(job_id, ["loopvid"], accounts=["nope"], by="t")
        with pytest.raises(InvalidRequest, match="publish.privacy"):
            await daemon.publishing.request(job_id, ["loopvid"], accounts=["loop-b"], options={"privacy": "world"},
                                            by="t")
        with pytest.raises(UnknownNameError, match="no video 999"):
            await daemon.publishing.request(999, ["loopvid"], by="t")
        assert await daemon.publishing.for_video(job_id) == []
        assert daemon.publishing.platforms() == {"loopvid": ["loop-main", "loop-b"]}
        rows = await daemon.publishing.request(job_id, ["loopvid"], accounts=["loop-b"], by="t")
        assert [r["account"] for r in rows] == ["loop-b"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        return tmp_path / "store.sqlite3"
    url = request.getfixturevalue("postgres_database")
    empty_tables(url)
    return url


async def test_a_node_that_loses_its_claim_mid_upload_is_stopped_and_another_resumes_from_the_saved_offset(
        tmp_path, platform, database):
    """Two nodes, each with its own store on one database: node a's lease runs out while a chunk is on its
    way; node b carries on from the session and offset a saved, node a's late writes are refused, and the
    platform ends up with one video, whole."""
    clock = Clock(datetime.now(timezone.utc))
    data = bytes(range(256)) * 800  # 204,800 bytes: four 64 KiB chunks
    video = tmp_path / "video.mp4"
    video.write_bytes(data)
    platform.hold_chunk = 2
    settings = PublishingSettings.model_validate(PUBLISHING)
    async with Store.open(database, clock, node_id="node-a") as store_a, \
            Store.open(database, clock, node_id="node-b") as store_b, aiohttp.ClientSession() as http:
        (job_id,) = await store_a.add_jobs([NewJob(renderer="fake", format="tiktok", avatar_id="sarah",
                                                   title="A video", request={})])
        await store_a.record_event(JobEvent(job_id=job_id, state=JobState.completed, percent=100),
                                   result={"video": str(video), "duration": 12.0})

        def node(store, name, lease):
            publishers = Registry("publisher")
            publisher = LoopbackPublisher(platform.url)
            publishers.add(publisher, "test")
            accounts = Accounts(settings, {"AVATAR_DAEMON_LOOP_MAIN_TOKEN": TOKEN})
            service = Publications(
                store, EventBus(store, [], name), publishers, accounts, Registry("format"),
                lambda job: asyncio.sleep(0, None), lambda job: [], http, settings, lambda n: None,
                node_id=name, lease_seconds=lease, clock=clock)
            return service, publisher

        # Node a renews its lease every 10 s: too late, once the clock has jumped past it (a hung node).
        (a, a_publisher), (b, b_publisher) = node(store_a, "node-a", 30), node(store_b, "node-b", 30)
        await a.request(job_id, ["loopvid"], by="test")
        claim_a = await store_a.claim_publication(["loopvid"], "node-a", lease_seconds=30)
        task_a = asyncio.create_task(a.work(claim_a))
        await asyncio.wait_for(platform.held.wait(), 10)
        saved = await store_b.publication(claim_a.id)
        assert (saved.state, saved.upload_offset) == ("uploading", 65536)
        clock.advance(31)  # node a is quiet past its lease
        # As node b's poll would: a claim skips a row another transaction holds this instant (a's percent write).
        claim_b = await wait_until(lambda: store_b.claim_publication(["loopvid"], "node-b", lease_seconds=30),
                                   timeout=5)
        assert claim_b.attempts == 2
        row = await b.work(claim_b)
        platform.release.set()  # a's chunk lands at last: its next save is refused, and it stops
        assert await asyncio.wait_for(task_a, 10) is None
        assert (await store_a.publication(claim_a.id)).state == "published"
    assert a_publisher.seen == [{}]
    assert b_publisher.seen == [{"session": saved.facts["session"], "offset": 65536}]
    assert (row.state, row.claimed_by, row.remote_id) == ("published", None, "v1")
    assert platform.starts == 1 and list(platform.videos) == ["v1"]
    assert platform.videos["v1"]["bytes"] == data
    b_puts = [r for _, r in platform.puts[2:]]
    assert b_puts[0] == f"bytes */{len(data)}" and b_puts[1].startswith("bytes 65536-")


async def test_a_published_post_found_in_the_saved_facts_is_never_posted_again(tmp_path, platform):
    """A crash after the platform answered with its id but before the row said published: the next try
    finds the id in what was saved and records it, with no second upload."""
    daemon, _, publisher = publishing_daemon(tmp_path, platform)
    async with daemon.started():
        job_id = await a_finished_video_started(daemon)
        await daemon.publishing.request(job_id, ["loopvid"], by="test")
        pub = await daemon.store.claim_publication(["loopvid"], daemon.node_id)
        await daemon.store.save_publication(pub.id, pub.fence, state="processing", facts={"video_id": "v7"})
        # the node died here; its next life releases the claim and claims it again
        assert await daemon.store.release_publications(daemon.node_id) == [pub.id]
        row = await daemon.publishing.work(await daemon.store.claim_publication(["loopvid"], daemon.node_id))
    assert (row.state, row.remote_id) == ("published", "v7")
    assert platform.starts == 0 and platform.puts == []


async def a_finished_video_started(daemon) -> int:
    """A finished video in a daemon that is started but not running (no services): run its job by hand."""
    job_ids = (await daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "hn.json", ".json")).job_ids
    await daemon.jobs.execute(await daemon.store.claim(job_ids[0]))
    assert (await daemon.store.job(job_ids[0])).status is JobState.completed
    return job_ids[0]


async def test_figures_of_published_posts_come_back_into_the_analytics(tmp_path, platform):
    daemon, _, _ = publishing_daemon(tmp_path, platform)
    async with running(daemon):
        job_id = await a_finished_video(daemon)
        await daemon.publishing.request(job_id, ["loopvid"], by="test")
        (row,) = await published(daemon, job_id)
        platform.videos[row["remote_id"]].update(views=1234, likes=56, comments=7)
        assert await daemon.publishing.figures_once() == 1
        totals = await daemon.store.analytics(None)
    (video,) = [v for v in totals["by_video"] if v["key"] == job_id]
    assert (video["view"], video["like"], video["comment"]) == (1234, 56, 7)
    assert {r["key"]: r["view"] for r in totals["by_platform"]}["loopvid"] == 1234


async def test_figures_are_read_back_on_their_schedule(tmp_path, platform):
    clock = Clock(datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc))
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(), PublishingPlugin(LoopbackPublisher(platform.url))],
                         clock=clock, publishing=PUBLISHING)
    async with daemon.started():
        job_id = await a_finished_video_started(daemon)
        await daemon.publishing.request(job_id, ["loopvid"], by="test")
        row = await daemon.publishing.work(await daemon.store.claim_publication(["loopvid"], daemon.node_id))
        platform.videos[row.remote_id]["views"] = 5

        async def views(expected):
            totals = await daemon.store.analytics(None, job_id)
            return next((v.get("view") for v in totals["by_video"]), None) == expected

        reader = asyncio.create_task(daemon.publishing.read_figures(recheck=0.02))
        try:
            await wait_until(lambda: views(5), timeout=30)  # never read before: at once
            platform.videos[row.remote_id]["views"] = 9
            clock.advance(5 * 3600)
            await asyncio.sleep(0.2)
            assert await views(5)  # five hours on: not yet
            clock.advance(3600)
            await wait_until(lambda: views(9), timeout=30)  # six: read again
            await wait_until(lambda: meta_is(daemon, clock().isoformat()), timeout=30)  # counted from then
        finally:
            reader.cancel()


async def meta_is(daemon, value: str) -> bool:
    return await daemon.store.get_meta("publishing.figures_at") == value


async def test_publish_options_layer_request_over_campaign_over_template(tmp_path, platform):
    (tmp_path / "templates.yaml").write_text(yaml.safe_dump({"video_templates": [
        {"id": "branded", "name": "Branded", "format": "tiktok",
         "publish": {"privacy": "unlisted", "category": "28", "made_for_kids": True, "extra": {"a": 1}}}]}))
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "c.yaml").write_text(
        "name: c\nsources: [{source: hackernews}]\nschedule: {every: daily}\ntemplate: branded\n"
        "quality: {min_insights: 1, max_age_hours: 1000000}\npublish: {privacy: public, extra: {b: 2}}\n")
    settings = make_settings(tmp_path, templates_file="templates.yaml", publishing=PUBLISHING)
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(), PublishingPlugin(LoopbackPublisher(platform.url))],
                         settings=settings)
    async with running(daemon):
        await wait_until(lambda: daemon.campaigns.path_of("c"))
        await daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "hn.json", ".json")
        (job_id,) = (await daemon.campaigns.run_now("c")).job_ids
        assert await wait_for_final(daemon, job_id) is JobState.completed
        await daemon.publishing.request(job_id, ["loopvid"], options={"made_for_kids": False}, by="test")
        (row,) = await published(daemon, job_id)
        (pub,) = await daemon.store.publications(job_id)
    assert pub.options == {"privacy": "public", "made_for_kids": False, "category": "28",
                           "notify_subscribers": False, "extra": {"a": 1, "b": 2}}
    assert platform.videos[row["remote_id"]]["privacy"] == "public"


async def test_an_upload_reports_its_progress_in_percent_and_never_its_session(tmp_path, platform):
    daemon, recording, _ = publishing_daemon(tmp_path, platform)
    video = tmp_path / "big.mp4"
    video.write_bytes(b"\1" * (64 * 1024 * 4))
    async with daemon.started():
        (job_id,) = await daemon.store.add_jobs([NewJob(renderer="fake", format="tiktok", avatar_id="sarah",
                                                        title="Big", request={})])
        await daemon.store.record_event(JobEvent(job_id=job_id, state=JobState.completed, percent=100),
                                        result={"video": str(video), "duration": 30.0})
        async with daemon.bus.watch(job_id) as events:
            await daemon.publishing.request(job_id, ["loopvid"], by="test")
            row = await daemon.publishing.work(await daemon.store.claim_publication(["loopvid"], daemon.node_id))
            seen = [events.get_nowait() for _ in range(events.qsize())]
    assert row.state == "published"
    states = [(e.publication["state"], e.publication["percent"]) for e in seen]
    assert states[0] == ("pending", 0) and states[-1] == ("published", 100)
    assert ("uploading", 25.0) in states  # the first chunk of four confirmed
    assert all(e.publication is not None and e.state is JobState.completed for e in seen)
    assert not any("session" in json.dumps(e.model_dump(mode="json")) for e in seen)


async def test_a_publication_queued_elsewhere_wakes_the_running_daemon_at_once(tmp_path, platform, postgres_database):
    """On PostgreSQL a request from another process (the CLI, another node) is heard through NOTIFY:
    the running daemon posts it long before its minute-long poll would have found it."""
    empty_tables(postgres_database)
    publishing = {**PUBLISHING, "poll_seconds": 60}
    running_daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(), PublishingPlugin(LoopbackPublisher(platform.url))],
                                 database=postgres_database, publishing=publishing)
    one_shot = make_daemon(tmp_path, plugins=[RecordingPlugin(), PublishingPlugin(LoopbackPublisher(platform.url))],
                           database=postgres_database, publishing=publishing)
    async with running(running_daemon):
        job_id = await a_finished_video(running_daemon)
        await asyncio.sleep(0.5)  # the daemon has looked and gone back to its long wait
        async with one_shot.started():
            await one_shot.publishing.request(job_id, ["loopvid"], by="command line")
        (row,) = await asyncio.wait_for(published(running_daemon, job_id), 15)
    assert row["state"] == "published" and len(platform.videos) == 1


async def test_a_campaign_video_that_finished_while_no_node_led_is_posted_when_one_leads_again(tmp_path, platform):
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "social.yaml").write_text(
        "name: social\nsources: [{source: hackernews}]\nschedule: {every: daily}\n"
        "quality: {min_insights: 1, max_age_hours: 1000000}\nauto_post: [loopvid]\n")
    first, _, _ = publishing_daemon(tmp_path, platform)
    async with first.started():  # no leader: nothing watches for the video finishing
        await first.campaigns.reload()
        await first.pipeline.ingest(fixture_bytes("hn_algolia.json"), "hn.json", ".json")
        (job_id,) = (await first.campaigns.run_now("social")).job_ids
        await first.jobs.execute(await first.store.claim(job_id))
        assert await first.publishing.for_video(job_id) == []
    again, _, _ = publishing_daemon(tmp_path, platform)
    async with running(again):
        (row,) = await published(again, job_id)
    assert row["state"] == "published" and row["requested_by"] == "campaign social" and len(platform.videos) == 1


def test_a_videos_shape_and_length_are_read_from_the_file(tmp_path):
    import av
    import numpy as np

    path = tmp_path / "short.mp4"
    with av.open(str(path), "w") as box:
        stream = box.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 360, 640, "yuv420p"
        for _ in range(25):  # 2.5 s
            frame = av.VideoFrame.from_ndarray(np.zeros((640, 360, 3), dtype=np.uint8), format="rgb24")
            box.mux(stream.encode(frame))
        box.mux(stream.encode())
    width, height, seconds = probe_video(path)
    assert (width, height) == (360, 640) and 2.0 <= seconds <= 3.0
    (tmp_path / "text.mp4").write_text("not a video")
    assert probe_video(tmp_path / "text.mp4") is None
