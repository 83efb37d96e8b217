"""The TikTok publisher against a fake TikTok that keeps the Content Posting API's rules (tests/fake_tiktok.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import aiohttp
import pytest

from avatar_daemon import PublishError, PublishOptions, QuotaWait, TryAgain
from avatar_daemon.testing import RecordingPlugin, make_daemon, make_settings, running
from avatar_daemon_plugins.tiktok.chunks import plan
from avatar_daemon_plugins.tiktok.publisher import TikTokPublisher
from avatar_daemon_plugins.tiktok.settings import TikTokSettings
from tests.fake_tiktok import CLIENT_KEY, CLIENT_SECRET, MiB, REFRESH_TOKEN, FakeTikTok
from tests.publish_attempts import NOW, Crash, PlainAccount, Record, finished_video, row_of, video_file
from tests.test_store import Clock

SECRETS = {"client_key": CLIENT_KEY, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN}


@pytest.fixture
async def tiktok():
    async with FakeTikTok().serve() as fake:
        yield fake


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


def publisher(fake: FakeTikTok, **settings) -> TikTokPublisher:
    cfg = TikTokSettings(base_url=fake.url, poll_first_seconds=0.01, poll_max_interval_seconds=0.05, **settings)
    return TikTokPublisher(cfg, lambda: NOW)


def record(tmp_path, size=1 * MiB, secrets=None, **options) -> Record:
    return Record(video_file(tmp_path, size), PlainAccount("acme-tiktok", "tiktok", secrets=secrets or dict(SECRETS)),
                  PublishOptions(**options))


def sent(rec: Record) -> bytes:
    return rec.video.path.read_bytes()


async def test_a_small_video_goes_whole_privately_and_is_posted_once(tiktok, http, tmp_path):
    rec = record(tmp_path, size=3 * MiB + 17)
    posted = await publisher(tiktok).publish(rec.attempt(), http)

    (post,) = tiktok.posts.values()
    assert (post.chunk_size, post.total_chunk_count) == (rec.video.size, 1)    # under 5 MiB: whole
    assert bytes(post.received) == sent(rec)
    assert post.post_info["privacy_level"] == "SELF_ONLY"                      # private is the default
    assert post.post_info["is_aigc"] is True                                   # an avatar is AI-generated: labelled
    assert post.post_info["title"] == "Rust 2026 in a minute\n\nWhat changed, briefly.\n\n#rust #dev"
    assert posted.remote_id == str(post.post_id)
    assert posted.url == f"https://www.tiktok.com/@acme.avatars/video/{post.post_id}"
    assert tiktok.calls["creator_info"] == 1 and tiktok.calls["video_init"] == 1
    assert tiktok.calls["status_fetch"] == tiktok.processing_polls + 1        # PROCESSING_UPLOAD, then complete
    assert [p.publish_id for p in tiktok.published()] == [post.publish_id]
    assert rec.facts["publish_id"] == post.publish_id and rec.stages == ["uploading", "processing"]
    assert tiktok.refused == []


async def test_a_file_over_5_mib_goes_in_chunks_by_tiktoks_rules(tiktok, http, tmp_path):
    rec = record(tmp_path, size=12 * MiB + 321)
    await publisher(tiktok, chunk_bytes=5 * MiB).publish(rec.attempt(), http)

    (post,) = tiktok.posts.values()
    assert (post.chunk_size, post.total_chunk_count) == (5 * MiB, 2)          # floor(12.x / 5); the last takes the rest
    assert post.chunks == 2 and bytes(post.received) == sent(rec)
    assert tiktok.refused == []
    assert [s["chunks_done"] for s in rec.saves if "chunks_done" in s] == [0, 1, 2]   # each chunk saved as confirmed
    percents = [p for p, _ in rec.messages]
    assert percents == sorted(percents) and percents[0] < 50 and max(percents) >= 90


async def test_the_fake_refuses_chunks_that_break_the_rules(tiktok, http):
    """The fake is only worth testing against if it refuses what TikTok refuses."""
    async with http.post(f"{tiktok.url}/v2/oauth/token/", data={"client_key": CLIENT_KEY, "client_secret": CLIENT_SECRET,
                                                                 "grant_type": "refresh_token",
                                                                 "refresh_token": REFRESH_TOKEN}) as resp:
        token = (await resp.json())["access_token"]
    auth = {"Authorization": f"Bearer {token}"}

    async def init(size, chunk, count):
        body = {"post_info": {"title": "t", "privacy_level": "SELF_ONLY", "brand_content_toggle": False,
                              "brand_organic_toggle": False},
                "source_info": {"source": "FILE_UPLOAD", "video_size": size, "chunk_size": chunk, "total_chunk_count": count}}
        async with http.post(f"{tiktok.url}/v2/post/publish/video/init/", json=body, headers=auth) as resp:
            return resp.status, await resp.json()

    assert (await init(3 * MiB, 1 * MiB, 3))[1]["error"]["code"] == "invalid_params"       # under 5 MB goes whole
    assert (await init(12 * MiB, 4 * MiB, 3))[1]["error"]["code"] == "invalid_params"      # chunks under 5 MB
    assert (await init(12 * MiB, 5 * MiB, 3))[1]["error"]["code"] == "invalid_params"      # count is floor(size/chunk)
    status, answer = await init(12 * MiB, 5 * MiB, 2)
    assert status == 200 and answer["error"]["code"] == "ok"
    url = answer["data"]["upload_url"]
    async with http.put(url, data=b"x" * 10, headers={"Content-Range": f"bytes {5 * MiB}-{5 * MiB + 9}/{12 * MiB}"}) as resp:
        assert resp.status == 416                                                           # out of order
    async with http.put(url, data=b"x" * (5 * MiB), headers={"Content-Range": f"bytes 0-{5 * MiB - 1}/{12 * MiB}"}) as resp:
        assert resp.status == 206


async def test_a_privacy_the_creator_cannot_use_is_refused_with_a_sentence(tiktok, http, tmp_path):
    rec = record(tmp_path, privacy="public")
    with pytest.raises(PublishError, match=r"@acme.avatars cannot post PUBLIC_TO_EVERYONE \(TikTok allows "
                                           r"FOLLOWER_OF_CREATOR, SELF_ONLY"):
        await publisher(tiktok).publish(rec.attempt(), http)
    assert tiktok.calls["video_init"] == 0 and rec.facts == {}


async def test_a_video_longer_than_the_creator_may_post_is_refused(tiktok, http, tmp_path):
    tiktok.max_video_post_duration_sec = 20
    rec = record(tmp_path)
    with pytest.raises(PublishError, match="30 s long and @acme.avatars may post at most 20 s"):
        await publisher(tiktok).publish(rec.attempt(), http)
    assert tiktok.calls["video_init"] == 0


async def test_the_init_rate_limit_waits_a_minute_instead_of_failing(tiktok, http, tmp_path):
    tiktok.init_per_minute = 1
    pub = publisher(tiktok)
    await pub.publish(record(tmp_path).attempt(), http)
    rec = record(tmp_path)
    with pytest.raises(QuotaWait) as waited:
        await pub.publish(rec.attempt(), http)
    assert waited.value.until == NOW + timedelta(seconds=60)
    assert "6 post inits a minute" in waited.value.reason
    assert ("video_init", {"code": "rate_limit_exceeded"}) in [(e, {"code": x["code"]}) for e, x in tiktok.refused]
    assert len(tiktok.posts) == 1 and rec.facts == {}   # nothing was started, so nothing is left half-done


async def test_a_refusal_on_http_200_is_still_a_refusal(tiktok, http, tmp_path):
    tiktok.answer_next.append(("video_init", 200, {"data": {}, "error": {
        "code": "spam_risk_user_banned_from_posting", "message": "The user is banned from posting", "log_id": "x"}}))
    with pytest.raises(PublishError, match="spam_risk_user_banned_from_posting"):
        await publisher(tiktok).publish(record(tmp_path).attempt(), http)

    tiktok.answer_next.append(("video_init", 200, {"data": {}, "error": {
        "code": "spam_risk_too_many_posts", "message": "The daily post cap from API is reached", "log_id": "y"}}))
    with pytest.raises(QuotaWait) as waited:
        await publisher(tiktok).publish(record(tmp_path).attempt(), http)
    assert waited.value.until == NOW + timedelta(hours=1)
    assert tiktok.posts == {}


async def test_a_failed_post_fails_with_tiktoks_reason(tiktok, http, tmp_path):
    tiktok.fail_reason = "file_format_check_failed"
    with pytest.raises(PublishError, match="file_format_check_failed"):
        await publisher(tiktok).publish(record(tmp_path).attempt(), http)
    assert tiktok.published() == []


@pytest.mark.parametrize("crash_at", ["publish_id", "processing"])
async def test_a_restart_with_a_saved_publish_id_asks_tiktok_first_and_never_posts_twice(tiktok, http, tmp_path, crash_at):
    pub = publisher(tiktok)
    rec = record(tmp_path, size=12 * MiB + 5)
    with pytest.raises(Crash):
        await pub.publish(rec.attempt(crash_at=crash_at), http)
    fetched = tiktok.calls["status_fetch"]

    posted = await publisher(tiktok).publish(rec.attempt(), http)   # a new process: a new publisher, the saved facts
    assert tiktok.calls["video_init"] == 1 and len(tiktok.posts) == 1
    assert tiktok.calls["status_fetch"] > fetched
    (post,) = tiktok.published()
    assert bytes(post.received) == sent(rec) and posted.remote_id == str(post.post_id)


async def test_a_crash_between_chunks_resumes_with_the_next_chunk(tiktok, http, tmp_path):
    rec = record(tmp_path, size=16 * MiB + 3)
    with pytest.raises(Crash):
        await publisher(tiktok, chunk_bytes=5 * MiB).publish(
            rec.attempt(crash_at="chunks_done", crash_when=lambda f: f["chunks_done"] == 1), http)
    (post,) = tiktok.posts.values()
    assert post.chunks == 1

    await publisher(tiktok, chunk_bytes=5 * MiB).publish(rec.attempt(), http)
    assert tiktok.calls["video_init"] == 1 and post.chunks == 3 and tiktok.calls["upload_chunk"] == 3
    assert bytes(post.received) == sent(rec) and tiktok.published() == [post]


async def test_a_crash_after_the_last_chunk_arrived_does_not_send_it_again(tiktok, http, tmp_path):
    rec = record(tmp_path, size=11 * MiB)
    with pytest.raises(Crash):
        await publisher(tiktok, chunk_bytes=5 * MiB).publish(
            rec.attempt(crash_at="chunks_done", crash_when=lambda f: f["chunks_done"] == 2), http)
    rec.facts["chunks_done"] = 1          # the save of the last chunk never reached the store
    await publisher(tiktok, chunk_bytes=5 * MiB).publish(rec.attempt(), http)
    assert tiktok.calls["upload_chunk"] == 2 and tiktok.refused == []
    (post,) = tiktok.published()
    assert bytes(post.received) == sent(rec)


async def test_a_restart_after_the_post_is_complete_only_reads_it_back(tiktok, http, tmp_path):
    rec = record(tmp_path)
    first = await publisher(tiktok).publish(rec.attempt(), http)   # done, but say the core died before recording it
    again = await publisher(tiktok).publish(rec.attempt(), http)
    assert again == first and tiktok.calls["video_init"] == 1 and tiktok.calls["upload_chunk"] == 1


async def test_an_upload_url_that_expired_in_the_crash_starts_a_new_upload(tiktok, http, tmp_path):
    rec = record(tmp_path, size=11 * MiB)
    with pytest.raises(Crash):
        await publisher(tiktok, chunk_bytes=5 * MiB).publish(
            rec.attempt(crash_at="chunks_done", crash_when=lambda f: f["chunks_done"] == 1), http)
    tiktok.upload_url_ttl = 0.0    # an hour went by
    with pytest.raises(TryAgain, match="upload URL expired"):
        await publisher(tiktok, chunk_bytes=5 * MiB).publish(rec.attempt(), http)
    tiktok.upload_url_ttl = 3600.0
    await publisher(tiktok, chunk_bytes=5 * MiB).publish(rec.attempt(), http)
    assert tiktok.calls["video_init"] == 2
    (post,) = tiktok.published()
    assert bytes(post.received) == sent(rec)


async def test_inbox_mode_uploads_a_draft_the_creator_finishes_in_the_app(tiktok, http, tmp_path):
    rec = record(tmp_path, extra={"mode": "inbox"})
    posted = await publisher(tiktok).publish(rec.attempt(), http)
    (post,) = tiktok.posts.values()
    assert post.mode == "inbox" and post.status == "SEND_TO_USER_INBOX" and bytes(post.received) == sent(rec)
    assert posted.remote_id == post.publish_id and posted.url is None
    assert tiktok.calls["video_init"] == 0 and tiktok.calls["inbox_init"] == 1
    assert "finish the post in the TikTok app" in rec.messages[-1][1]


async def test_an_expired_access_token_is_refreshed_once(tiktok, http, tmp_path):
    pub = publisher(tiktok)
    await pub.publish(record(tmp_path).attempt(), http)
    tiktok.expire_tokens()
    await pub.publish(record(tmp_path).attempt(), http)
    assert len(tiktok.tokens.issued) == 2 and len(tiktok.published()) == 2
    assert [e for e, x in tiktok.refused if x["code"] == "access_token_invalid"] == ["creator_info"]


async def test_a_refused_refresh_token_says_so_without_the_secrets(tiktok, http, tmp_path):
    secrets = {**SECRETS, "refresh_token": "rft.revoked-0123456789"}
    with pytest.raises(PublishError) as refused:
        await publisher(tiktok).publish(record(tmp_path, secrets=secrets).attempt(), http)
    message = str(refused.value)
    assert "TikTok account acme-tiktok" in message and "invalid_grant" in message and "authorise" in message
    assert all(s not in message for s in (*secrets.values(), *tiktok.tokens.issued))


async def test_check_names_the_creator(tiktok, http, tmp_path):
    account = PlainAccount("acme-tiktok", "tiktok", secrets=dict(SECRETS))
    said = await publisher(tiktok).check(account, http)
    assert said == "TikTok @acme.avatars (Acme Avatars), may post FOLLOWER_OF_CREATOR, SELF_ONLY"


async def test_figures_read_views_likes_and_comments(tiktok, http, tmp_path):
    pub = publisher(tiktok)
    posted = await pub.publish(record(tmp_path).attempt(), http)
    tiktok.figures[posted.remote_id] = {"view_count": 1200, "like_count": 85, "comment_count": 9}
    account = PlainAccount("acme-tiktok", "tiktok", secrets=dict(SECRETS))
    found = await pub.figures(account, [posted.remote_id, "7399999999999999999", "v_pub_file~v2-1.1"], http)
    assert list(found) == [posted.remote_id]                                  # unknown ids are left out
    assert (found[posted.remote_id].views, found[posted.remote_id].likes, found[posted.remote_id].comments) == (1200, 85, 9)


@pytest.mark.parametrize("size", [1, 5 * MiB - 1, 5 * MiB, 64 * MiB, 64 * MiB + 1, 127 * MiB + 5, 200 * MiB + 7,
                                  64 * MiB * 1000, 64 * MiB * 1000 + 1])
@pytest.mark.parametrize("preferred", [5 * MiB, 16 * MiB, 64 * MiB])
def test_every_chunk_plan_keeps_tiktoks_rules(size, preferred):
    p = plan(size, preferred)
    assert FakeTikTok._check_source({"source": "FILE_UPLOAD", "video_size": size, "chunk_size": p.chunk_size,
                                     "total_chunk_count": p.total_chunk_count}) is None
    spans = [p.span(i) for i in range(p.total_chunk_count)]
    assert spans[0][0] == 0 and spans[-1][1] == size and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


def test_a_file_too_big_for_a_thousand_chunks_is_refused():
    with pytest.raises(PublishError, match="more than TikTok's 1000 chunks"):
        plan(64 * MiB * 1001 + 1, 16 * MiB)


# ---- through the publishing service: a real daemon, its store, the built-in plugin ----------------------


def tiktok_daemon(tmp_path, fake: FakeTikTok, monkeypatch, clock=None, **tiktok):
    for key, value in SECRETS.items():
        monkeypatch.setenv(f"AVATAR_DAEMON_ACME_TIKTOK_{key.upper()}", value)
    settings = make_settings(
        tmp_path, publishing={"accounts": {"acme-tiktok": {"platform": "tiktok"}}, "poll_seconds": 0.05,
                              "retry_seconds": 0.05},
        plugins={"settings": {"tiktok": {"base_url": fake.url, "poll_first_seconds": 0.01,
                                         "poll_max_interval_seconds": 0.05, **tiktok}}})
    return make_daemon(tmp_path, plugins=[RecordingPlugin()], settings=settings, **({"clock": clock} if clock else {}))


async def test_the_service_posts_a_finished_video_to_tiktok_privately(tmp_path, tiktok, monkeypatch, caplog):

    daemon = tiktok_daemon(tmp_path, tiktok, monkeypatch)
    async with running(daemon):
        job_id = await finished_video(daemon)
        await daemon.publishing.request(job_id, ["tiktok"], by="test")
        row = await row_of(daemon, job_id, lambda r: r["state"] in ("published", "failed"))
        job = await daemon.store.job(job_id)
    (post,) = tiktok.published()
    assert (row["state"], row["remote_id"]) == ("published", str(post.post_id))
    assert row["url"] == f"https://www.tiktok.com/@acme.avatars/video/{post.post_id}"
    assert bytes(post.received) == open(job.result["video"], "rb").read()
    assert post.post_info["privacy_level"] == "SELF_ONLY"
    assert all(secret not in caplog.text for secret in (*SECRETS.values(), *tiktok.tokens.issued))


async def test_the_service_waits_out_the_init_limit_and_then_posts(tmp_path, tiktok, monkeypatch):
    clock = Clock(NOW)
    tiktok.answer_next.append(("video_init", 429, {"data": {}, "error": {
        "code": "rate_limit_exceeded", "message": "API rate limit exceeded", "log_id": "z"}}))
    daemon = tiktok_daemon(tmp_path, tiktok, monkeypatch, clock=clock)
    async with running(daemon):
        job_id = await finished_video(daemon)
        await daemon.publishing.request(job_id, ["tiktok"], by="test")
        row = await row_of(daemon, job_id, lambda r: r["not_before"])
        assert (row["state"], row["error"]) == ("pending", None)          # waiting, not failed
        assert datetime.fromisoformat(row["not_before"]) == NOW + timedelta(seconds=60)
        assert "rate limit" in row["message"] and tiktok.posts == {}
        clock.advance(61)
        row = await row_of(daemon, job_id, lambda r: r["state"] == "published")
    assert tiktok.calls["video_init"] == 2 and len(tiktok.published()) == 1


async def test_a_daemon_restarted_mid_processing_asks_tiktok_and_posts_once(tmp_path, tiktok, monkeypatch):

    tiktok.processing_polls = 10_000                                      # TikTok takes its time...
    async with running(tiktok_daemon(tmp_path, tiktok, monkeypatch)) as daemon:
        job_id = await finished_video(daemon)
        await daemon.publishing.request(job_id, ["tiktok"], by="test")
        await row_of(daemon, job_id, lambda r: r["state"] == "processing")
    (post,) = tiktok.posts.values()                                        # ...and the daemon stops meanwhile
    assert post.status == "PROCESSING_UPLOAD" and post.chunks == post.total_chunk_count

    tiktok.processing_polls = 1
    async with running(tiktok_daemon(tmp_path, tiktok, monkeypatch)) as daemon:   # its next life, same database
        row = await row_of(daemon, job_id, lambda r: r["state"] in ("published", "failed"))
    assert row["state"] == "published" and row["remote_id"] == str(post.post_id)
    assert tiktok.calls["video_init"] == 1 and tiktok.calls["upload_chunk"] == 1 and tiktok.published() == [post]


async def test_the_service_fails_a_refused_post_with_tiktoks_reason(tmp_path, tiktok, monkeypatch):

    tiktok.fail_reason = "duration_check_failed"
    async with running(tiktok_daemon(tmp_path, tiktok, monkeypatch)) as daemon:
        job_id = await finished_video(daemon)
        await daemon.publishing.request(job_id, ["tiktok"], by="test")
        row = await row_of(daemon, job_id, lambda r: r["state"] in ("published", "failed"))
    assert row["state"] == "failed" and "duration_check_failed" in row["error"]
