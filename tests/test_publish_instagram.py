"""The Instagram publisher against a fake Graph API and rupload host (tests/fake_instagram.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import aiohttp
import pytest

from avatar_daemon import ConfigError, PublishError, PublishOptions, QuotaWait, TryAgain
from avatar_daemon.testing import RecordingPlugin, make_daemon, make_settings, running
from avatar_daemon_plugins.instagram.publisher import InstagramPublisher
from avatar_daemon_plugins.instagram.settings import InstagramSettings
from tests.fake_instagram import ACCESS_TOKEN, APP_ID, APP_SECRET, IG_USER_ID, FakeInstagram, FakeMedia
from tests.publish_attempts import NOW, Crash, PlainAccount, Record, finished_video, row_of, video_file
from tests.test_store import Clock

MiB = 1024 * 1024


@pytest.fixture
async def ig():
    async with FakeInstagram(clock=lambda: NOW).serve() as fake:
        yield fake


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


def publisher(fake: FakeInstagram, **settings) -> InstagramPublisher:
    cfg = InstagramSettings(graph_url=fake.url, rupload_url=fake.url, poll_first_seconds=0.01,
                            poll_max_interval_seconds=0.05, **settings)
    return InstagramPublisher(cfg, lambda: NOW)


def account(refresh: bool = False, **secrets) -> PlainAccount:
    settings = {"ig_user_id": IG_USER_ID, **({"app_id": APP_ID} if refresh else {})}
    return PlainAccount("acme-ig", "instagram", settings,
                        {"access_token": ACCESS_TOKEN, **({"app_secret": APP_SECRET} if refresh else {}), **secrets})


def record(tmp_path, size=2 * MiB + 11, refresh=False, **options) -> Record:
    return Record(video_file(tmp_path, size), account(refresh), PublishOptions(**{"privacy": "public", **options}))


async def test_a_reel_goes_in_progress_then_finished_and_is_published_once(ig, http, tmp_path):
    rec = record(tmp_path)
    posted = await publisher(ig).publish(rec.attempt(), http)

    (container,) = ig.containers.values()
    assert container.params["media_type"] == "REELS" and container.params["upload_type"] == "resumable"
    assert container.params["caption"] == "Rust 2026 in a minute\n\nWhat changed, briefly.\n\n#rust #dev"
    assert container.params["share_to_feed"] == "true"
    assert bytes(container.received) == rec.video.path.read_bytes()
    assert ig.upload_headers == [{"offset": "0", "file_size": str(rec.video.size), "Content-Length": str(rec.video.size)}]
    assert ig.calls["node"] >= ig.processing_polls + 1              # polled through IN_PROGRESS
    assert ig.publish_calls == 1
    (media,) = ig.media.values()
    assert posted.remote_id == media.id and posted.url == f"https://www.instagram.com/reel/R{media.id}/"
    assert rec.facts["container_id"] == container.id and rec.facts["media_id"] == media.id
    assert rec.stages == ["uploading", "processing"] and ig.refused == []


async def test_private_is_refused_because_reels_are_public(ig, http, tmp_path):
    rec = record(tmp_path, privacy="private")
    with pytest.raises(PublishError, match="Instagram has no private Reels.*set privacy: public"):
        await publisher(ig).publish(rec.attempt(), http)
    assert ig.containers == {} and ig.calls["create_container"] == 0


async def test_a_container_in_error_fails_with_instagrams_reason(ig, http, tmp_path):
    ig.error_status = "Error: The video's aspect ratio is not supported (2207026)"
    with pytest.raises(PublishError, match="aspect ratio is not supported"):
        await publisher(ig).publish(record(tmp_path).attempt(), http)
    assert ig.publish_calls == 0 and ig.media == {}


async def test_a_used_up_publishing_limit_waits_for_the_oldest_post_to_leave_the_24_hours(ig, http, tmp_path):
    ig.quota_total = 2
    for hours_ago in (3, 20):
        media = FakeMedia(f"m{hours_ago}", "c", "earlier", NOW - timedelta(hours=hours_ago), b"")
        ig.media[media.id] = media
    rec = record(tmp_path)
    with pytest.raises(QuotaWait) as waited:
        await publisher(ig).publish(rec.attempt(), http)
    assert waited.value.until == NOW + timedelta(hours=4)            # the post of 20 h ago leaves in 4 h
    assert "2 of 2 posts" in waited.value.reason
    assert ig.containers == {} and rec.facts == {}

    del ig.media["m3"]                                                # deleted in the app: the list no longer says
    ig.quota_total = 1
    with pytest.raises(QuotaWait) as waited:
        await publisher(ig, quota_wait_seconds=600).publish(record(tmp_path).attempt(), http)
    assert waited.value.until == NOW + timedelta(hours=4)
    ig.media.clear()
    ig.media["x"] = FakeMedia("x", "c", "made elsewhere", NOW - timedelta(hours=25), b"")  # outside the window...
    ig.used = lambda: 1                                               # ...yet Meta counts one: no time to go by
    with pytest.raises(QuotaWait) as waited:
        await publisher(ig, quota_wait_seconds=600).publish(record(tmp_path).attempt(), http)
    assert waited.value.until == NOW + timedelta(minutes=10)


async def test_the_quota_total_is_read_at_run_time(ig, http, tmp_path):
    ig.quota_total = 1
    pub = publisher(ig)
    await pub.publish(record(tmp_path).attempt(), http)
    with pytest.raises(QuotaWait):
        await pub.publish(record(tmp_path).attempt(), http)
    ig.quota_total = 25
    await pub.publish(record(tmp_path).attempt(), http)
    assert ig.publish_calls == 2 and len(ig.media) == 2


async def test_a_lost_media_publish_answer_is_looked_up_not_published_again(ig, http, tmp_path):
    ig.drop_after_publish = 1
    rec = record(tmp_path)
    with pytest.raises(TryAgain):
        await publisher(ig).publish(rec.attempt(), http)
    assert ig.publish_calls == 1 and "media_id" not in rec.facts

    posted = await publisher(ig).publish(rec.attempt(), http)        # a new try: the container says PUBLISHED
    (media,) = ig.media.values()
    assert ig.publish_calls == 1 and posted.remote_id == media.id and posted.url.endswith(f"R{media.id}/")


@pytest.mark.parametrize("crash_at", ["container_id", "processing", "media_id"])
async def test_a_restart_with_a_saved_container_never_posts_twice(ig, http, tmp_path, crash_at):
    rec = record(tmp_path)
    with pytest.raises(Crash):
        await publisher(ig).publish(rec.attempt(crash_at=crash_at), http)
    posted = await publisher(ig).publish(rec.attempt(), http)
    assert ig.calls["create_container"] == 1 and ig.publish_calls == 1
    (media,) = ig.media.values()
    assert media.bytes == rec.video.path.read_bytes() and posted.remote_id == media.id


async def test_an_interrupted_upload_resumes_from_the_bytes_graph_reports(ig, http, tmp_path):
    rec = record(tmp_path, size=3 * MiB + 5)
    ig.cut_upload_after = MiB + 7
    with pytest.raises(TryAgain, match="upload"):
        await publisher(ig).publish(rec.attempt(), http)
    (container,) = ig.containers.values()
    assert len(container.received) == MiB + 7

    await publisher(ig).publish(rec.attempt(), http)
    assert ig.calls["video_status"] == 1
    assert [h["offset"] for h in ig.upload_headers] == ["0", str(MiB + 7)]
    assert ig.upload_headers[1]["Content-Length"] == str(rec.video.size - MiB - 7)
    assert bytes(container.received) == rec.video.path.read_bytes() and ig.publish_calls == 1


async def test_an_expired_container_is_replaced(ig, http, tmp_path):
    ig.expire_next = True
    rec = record(tmp_path)
    with pytest.raises(TryAgain, match="expired"):
        await publisher(ig).publish(rec.attempt(), http)
    await publisher(ig).publish(rec.attempt(), http)
    assert ig.calls["create_container"] == 2 and ig.publish_calls == 1
    assert [c.status for c in ig.containers.values()] == ["EXPIRED", "PUBLISHED"]


async def test_the_long_lived_token_is_exchanged_and_refreshed_when_meta_refuses_it(ig, http, tmp_path):
    pub = publisher(ig)
    await pub.publish(record(tmp_path, refresh=True).attempt(), http)
    assert ig.exchanges == 1                                          # a fresh long-lived token at the start
    ig.expire_tokens()                                                # the exchanged one stops working
    await pub.publish(record(tmp_path, refresh=True).attempt(), http)
    assert ig.exchanges == 2 and len(ig.media) == 2
    # the stale token was refused, and exchanging it too: the configured one was exchanged instead
    assert [e for e, x in ig.refused if x.get("code") == 190] == ["publishing_limit", "exchange"]


async def test_a_token_meta_no_longer_takes_fails_with_a_sentence_and_no_secret(ig, http, tmp_path):
    ig.expire_tokens(keep_configured=False)
    rec = record(tmp_path, refresh=True)
    with pytest.raises(PublishError) as refused:
        await publisher(ig).publish(rec.attempt(), http)
    message = str(refused.value)
    assert "Instagram account acme-ig" in message and "log in again" in message
    assert ACCESS_TOKEN not in message and APP_SECRET not in message
    assert ig.containers == {}


async def test_an_account_without_its_ig_user_id_is_a_config_error(ig, http, tmp_path):
    rec = record(tmp_path)
    rec.account.settings.pop("ig_user_id")
    with pytest.raises(ConfigError, match="publishing.accounts.acme-ig.ig_user_id"):
        await publisher(ig).publish(rec.attempt(), http)


async def test_check_names_the_account_and_its_limit(ig, http):
    said = await publisher(ig).check(account(), http)
    assert said == f"Instagram @acme.avatars ({IG_USER_ID}), 0 of 100 posts used in the last 24 hours"


async def test_figures_read_views_likes_and_comments(ig, http, tmp_path):
    pub = publisher(ig)
    posted = await pub.publish(record(tmp_path).attempt(), http)
    ig.figures[posted.remote_id] = {"views": 5400, "likes": 310, "comments": 12}
    found = await pub.figures(account(), [posted.remote_id, "17999999999999999"], http)
    assert list(found) == [posted.remote_id]                          # a deleted post is left out
    assert (found[posted.remote_id].views, found[posted.remote_id].likes, found[posted.remote_id].comments) == (5400, 310, 12)


# ---- through the publishing service: a real daemon, its store, the built-in plugin ----------------------


def instagram_daemon(tmp_path, fake: FakeInstagram, monkeypatch, clock=None, **instagram):
    """The daemon and the fake Instagram share one clock, as the real ones share the wall's."""
    clock = clock or Clock(NOW)
    fake.clock = clock
    monkeypatch.setenv("AVATAR_DAEMON_ACME_IG_ACCESS_TOKEN", ACCESS_TOKEN)
    monkeypatch.setenv("AVATAR_DAEMON_ACME_IG_APP_SECRET", APP_SECRET)
    settings = make_settings(
        tmp_path, publishing={"accounts": {"acme-ig": {"platform": "instagram", "ig_user_id": IG_USER_ID,
                                                       "app_id": APP_ID}},
                              "poll_seconds": 0.05, "retry_seconds": 0.05},
        plugins={"settings": {"instagram": {"graph_url": fake.url, "rupload_url": fake.url, "poll_first_seconds": 0.01,
                                            "poll_max_interval_seconds": 0.05, **instagram}}})
    return make_daemon(tmp_path, plugins=[RecordingPlugin()], settings=settings, clock=clock)


async def test_the_service_posts_a_reel_once_it_has_finished_processing(tmp_path, ig, monkeypatch, caplog):

    async with running(instagram_daemon(tmp_path, ig, monkeypatch)) as daemon:
        job_id = await finished_video(daemon)
        await daemon.publishing.request(job_id, ["instagram"], options={"privacy": "public"}, by="test")
        row = await row_of(daemon, job_id, lambda r: r["state"] in ("published", "failed"))
        job = await daemon.store.job(job_id)
    (media,) = ig.media.values()
    assert (row["state"], row["remote_id"], row["url"]) == ("published", media.id, f"https://www.instagram.com/reel/R{media.id}/")
    assert media.bytes == open(job.result["video"], "rb").read()
    assert ig.publish_calls == 1 and ig.exchanges == 1
    assert ACCESS_TOKEN not in caplog.text and APP_SECRET not in caplog.text


async def test_the_service_fails_a_private_reel_rather_than_post_it_publicly(tmp_path, ig, monkeypatch):

    async with running(instagram_daemon(tmp_path, ig, monkeypatch)) as daemon:
        job_id = await finished_video(daemon)
        await daemon.publishing.request(job_id, ["instagram"], by="test")    # private, the default
        row = await row_of(daemon, job_id, lambda r: r["state"] in ("published", "failed"))
    assert row["state"] == "failed" and "Instagram has no private Reels" in row["error"]
    assert ig.containers == {}


async def test_the_service_fails_a_reel_instagram_could_not_process(tmp_path, ig, monkeypatch):

    ig.error_status = "Error: the video's frame rate is not supported"
    async with running(instagram_daemon(tmp_path, ig, monkeypatch)) as daemon:
        job_id = await finished_video(daemon)
        await daemon.publishing.request(job_id, ["instagram"], options={"privacy": "public"}, by="test")
        row = await row_of(daemon, job_id, lambda r: r["state"] in ("published", "failed"))
    assert row["state"] == "failed" and "frame rate is not supported" in row["error"]
    assert ig.publish_calls == 0


async def test_a_daemon_restarted_while_the_container_processes_publishes_it_once(tmp_path, ig, monkeypatch):

    ig.processing_polls = 10_000
    async with running(instagram_daemon(tmp_path, ig, monkeypatch)) as daemon:
        job_id = await finished_video(daemon)
        await daemon.publishing.request(job_id, ["instagram"], options={"privacy": "public"}, by="test")
        await row_of(daemon, job_id, lambda r: r["state"] == "processing")
    (container,) = ig.containers.values()
    assert container.status == "IN_PROGRESS" and ig.publish_calls == 0

    ig.processing_polls = 1
    async with running(instagram_daemon(tmp_path, ig, monkeypatch)) as daemon:
        row = await row_of(daemon, job_id, lambda r: r["state"] in ("published", "failed"))
    (media,) = ig.media.values()
    assert (row["state"], row["remote_id"]) == ("published", media.id)
    assert ig.calls["create_container"] == 1 and ig.calls["rupload"] == 1 and ig.publish_calls == 1


async def test_the_service_waits_for_the_publishing_limit_to_free_a_slot(tmp_path, ig, monkeypatch):
    clock = Clock(NOW)
    ig.quota_total = 1
    ig.media["m1"] = FakeMedia("m1", "c", "earlier", NOW - timedelta(hours=23), b"")
    async with running(instagram_daemon(tmp_path, ig, monkeypatch, clock=clock)) as daemon:
        job_id = await finished_video(daemon)
        await daemon.publishing.request(job_id, ["instagram"], options={"privacy": "public"}, by="test")
        row = await row_of(daemon, job_id, lambda r: r["not_before"])
        assert (row["state"], row["error"]) == ("pending", None)
        assert datetime.fromisoformat(row["not_before"]) == NOW + timedelta(hours=1)   # when m1 leaves the 24 h
        assert ig.containers == {}
        clock.advance(3601)
        row = await row_of(daemon, job_id, lambda r: r["state"] in ("published", "failed"))
    assert row["state"] == "published" and ig.publish_calls == 1 and len(ig.media) == 2


async def test_the_service_looks_up_a_reel_whose_publish_answer_was_lost(tmp_path, ig, monkeypatch):
    ig.drop_after_publish = 1
    clock = Clock(NOW)
    async with running(instagram_daemon(tmp_path, ig, monkeypatch, clock=clock)) as daemon:
        job_id = await finished_video(daemon)
        await daemon.publishing.request(job_id, ["instagram"], options={"privacy": "public"}, by="test")
        row = await row_of(daemon, job_id, lambda r: r["not_before"])     # the try whose answer was lost
        assert row["state"] != "failed" and "could not be reached" in row["message"]
        clock.advance(3600)
        row = await row_of(daemon, job_id, lambda r: r["state"] in ("published", "failed"))
    (media,) = ig.media.values()
    assert row["error"] is None
    assert (row["state"], row["remote_id"]) == ("published", media.id) and ig.publish_calls == 1
