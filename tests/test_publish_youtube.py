"""The YouTube publisher against a fake Google on 127.0.0.1 (tests/fake_youtube.py).

What the video resource carries, when a quota resets, and the resumable upload through its
faults: exact bytes, a dropped chunk resumed from the server's Range, an access token that
expires mid-upload, quotaExceeded waiting instead of failing, a crash that never posts twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from avatar_daemon import PublishOptions, PublishVideo, RenderResult
from avatar_daemon.models import JobState
from avatar_daemon.planning import VideoSettings
from avatar_daemon.store import Store
from avatar_daemon.testing import FakeRenderer, RecordingPlugin, make_daemon, make_settings, running, \
    wait_for_final, wait_until
from avatar_daemon_plugins.youtube.limits import next_pacific_midnight, quota_wait
from avatar_daemon_plugins.youtube.resource import video_resource
from avatar_daemon_plugins.youtube.settings import YouTubeSettings
from tests.conftest import REPO, fixture_bytes
from tests.fake_youtube import QUANTUM as Q, FakeYouTube, _check_resource
from tests.test_store import Clock

ACCOUNT = "acme-shorts"


def _video(tmp_path: Path, **fields) -> PublishVideo:
    path = tmp_path / "video.mp4"
    path.write_bytes(b"\0" * 10)
    base = dict(job_id=7, path=path, size=10, format="tiktok", width=1080, height=1920, duration=42.0,
                title="A title")
    return PublishVideo(**{**base, **fields})


# ---- the video resource --------------------------------------------------------------------


def test_made_for_kids_is_always_sent_and_privacy_defaults_to_private(tmp_path):
    default = video_resource(_video(tmp_path), PublishOptions(), synthetic=True, category=None)
    assert default["status"] == {"privacyStatus": "private", "selfDeclaredMadeForKids": False,
                                 "containsSyntheticMedia": True}
    kids = video_resource(_video(tmp_path), PublishOptions(made_for_kids=True, privacy="public",
                                                           extra={"contains_synthetic_media": False}),
                          synthetic=True, category=None)
    assert kids["status"] == {"privacyStatus": "public", "selfDeclaredMadeForKids": True,
                              "containsSyntheticMedia": False}
    assert "categoryId" not in default["snippet"]


def test_category_from_the_options_over_the_setting(tmp_path):
    assert video_resource(_video(tmp_path), PublishOptions(), synthetic=True, category="22")["snippet"][
        "categoryId"] == "22"
    assert video_resource(_video(tmp_path), PublishOptions(category="28"), synthetic=True, category="22")[
        "snippet"]["categoryId"] == "28"


def test_a_long_title_is_cut_at_a_word_within_100_characters(tmp_path):
    title = "Why the <new> model " + "matters " * 30
    resource = video_resource(_video(tmp_path, title=title), PublishOptions(), synthetic=True, category=None)
    cut = resource["snippet"]["title"]
    assert len(cut) <= 100 and cut.endswith("matters…") and "<" not in cut and "‹new›" in cut
    assert _check_resource(resource) is None


def test_hashtags_close_a_long_description_within_5000_bytes(tmp_path):
    description = "Ünïcödé wörds " * 600  # about 10,000 bytes
    video = _video(tmp_path, description=description, hashtags=["#ai", "tech", "#ai"])
    snippet = video_resource(video, PublishOptions(), synthetic=True, category=None)["snippet"]
    assert len(snippet["description"].encode()) <= 5000
    assert snippet["description"].endswith("…\n\n#ai #tech")
    assert snippet["tags"] == ["ai", "tech"]


def test_a_video_without_a_title_is_refused_with_a_sentence(tmp_path):
    from avatar_daemon import PublishError

    with pytest.raises(PublishError, match="video 7 has no title"):
        video_resource(_video(tmp_path, title="  "), PublishOptions(), synthetic=True, category=None)


# ---- limits and settings -------------------------------------------------------------------


@pytest.mark.parametrize("now, reset", [
    ("2026-07-01T12:00:00+00:00", "2026-07-02T07:00:00+00:00"),   # PDT: midnight is 07:00 UTC
    ("2026-12-02T12:00:00+00:00", "2026-12-03T08:00:00+00:00"),   # PST: 08:00 UTC
    ("2026-12-03T07:59:00+00:00", "2026-12-03T08:00:00+00:00"),   # a minute before the reset
    ("2026-03-08T07:30:00+00:00", "2026-03-08T08:00:00+00:00"),   # 23:30 PST on the eve of the spring change
    ("2026-03-08T12:00:00+00:00", "2026-03-09T07:00:00+00:00"),   # 05:00 PDT, after it: the next midnight is PDT
    ("2026-11-01T06:30:00+00:00", "2026-11-01T07:00:00+00:00"),   # 23:30 PDT on the night they go back
])
def test_the_quota_waits_for_the_next_midnight_in_los_angeles(now, reset):
    assert next_pacific_midnight(datetime.fromisoformat(now)) == datetime.fromisoformat(reset)


def test_quota_reasons_become_waits_and_others_do_not():
    now = datetime(2026, 12, 2, 12, tzinfo=timezone.utc)
    assert quota_wait(["quotaExceeded"], now, "x").until == datetime(2026, 12, 3, 8, tzinfo=timezone.utc)
    assert quota_wait(["uploadLimitExceeded"], now, "x").until == datetime(2026, 12, 3, 12, tzinfo=timezone.utc)
    assert quota_wait(["invalidTitle"], now, "x") is None


def test_a_chunk_size_off_the_256_kib_grid_is_refused_with_a_suggestion():
    assert YouTubeSettings(chunk_size=4 * 262144).chunk_size == 1048576
    with pytest.raises(ValidationError, match="multiple of 262144.*try 1048576"):
        YouTubeSettings(chunk_size=1_000_000)


# ---- through the daemon: the publications service, its store and the plugin -------------------


class FileRenderer(FakeRenderer):
    """The test renderer, writing a video file of `size` bytes (the same bytes for the same size)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    async def render(self, request, progress) -> RenderResult:
        request.output_dir.mkdir(parents=True, exist_ok=True)
        video = request.output_dir / "video.mp4"
        video.write_bytes(random.Random(self.size).randbytes(self.size))
        return RenderResult(video=video, duration=30.0)


@pytest.fixture
async def fake():
    async with FakeYouTube().serve() as f:
        yield f


@pytest.fixture
def secrets(monkeypatch):
    """The account's credentials, from the environment as the daemon reads them."""
    for key, value in FakeYouTube.secrets().items():
        monkeypatch.setenv(f"AVATAR_DAEMON_ACME_SHORTS_{key.upper()}", value)
    return FakeYouTube.secrets()


def youtube_daemon(tmp_path, fake, *, size: int, chunk: int = 2 * Q, clock=None, **youtube):
    recording = RecordingPlugin(renderer=FileRenderer(size))
    settings = make_settings(
        tmp_path, publishing={"accounts": {ACCOUNT: {"platform": "youtube"}}, "poll_seconds": 0.05,
                              "retry_seconds": 0.05},
        plugins={"settings": {"youtube": {**fake.settings(), "chunk_size": chunk, "backoff_seconds": 0.01, **youtube}}})
    return make_daemon(tmp_path, plugins=[recording], settings=settings, clock=clock), recording


async def a_finished_video(daemon, format: str = "tiktok") -> tuple[int, bytes]:
    job_ids = (await daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "hn.json", ".json",
                                            overrides=VideoSettings(formats=[format]))).job_ids
    assert await wait_for_final(daemon, job_ids[0]) is JobState.completed
    job = await daemon.store.job(job_ids[0])
    return job.id, Path(job.result["video"]).read_bytes()


async def ended(daemon, job_id, timeout: float = 30) -> dict:
    async def done():
        (row,) = await daemon.publishing.for_video(job_id)
        return row if row["state"] in ("published", "failed") else None
    return await wait_until(done, timeout=timeout)


async def publish(daemon, job_id, **options) -> dict:
    await daemon.publishing.request(job_id, ["youtube"], options=options or None, by="test")
    return await ended(daemon, job_id)


def sent(fake, row) -> bytes:
    return fake.videos[row["remote_id"]].data


async def test_the_exact_bytes_arrive_in_256_kib_chunks_and_the_short_is_published(tmp_path, fake, secrets, caplog):
    caplog.set_level(logging.DEBUG)
    daemon, recording = youtube_daemon(tmp_path, fake, size=5 * Q + 1000)
    async with running(daemon):
        job_id, data = await a_finished_video(daemon)
        script = await daemon.jobs.script_for(await daemon.store.job(job_id))
        row = await publish(daemon, job_id)
    assert row["state"] == "published", row
    assert row["url"] == f"https://youtube.com/shorts/{row['remote_id']}"  # 9:16 and 30 s: a Short
    assert sent(fake, row) == data and fake.problems == []
    assert fake.chunk_sizes == [2 * Q, 2 * Q, Q + 1000] and len(fake.sessions) == 1
    (session,) = fake.sessions.values()
    assert session.params["notifySubscribers"] == "false" and session.mime == "video/mp4"
    resource = fake.videos[row["remote_id"]].resource
    assert resource["status"] == {"privacyStatus": "private", "selfDeclaredMadeForKids": False,
                                  "containsSyntheticMedia": True, "uploadStatus": "uploaded"}
    assert resource["snippet"]["title"] == script.title
    assert resource["snippet"]["description"].endswith(" ".join(script.hashtags))
    progress = [e for e in recording.notifier.events if e.publication and "uploading to YouTube" in e.message]
    percents = [e.publication["percent"] for e in progress]  # as many as the core lets through at this speed
    assert progress and percents == sorted(percents) and all(0 <= p < 100 for p in percents)
    assert "of 1.3 MB" in progress[0].message
    for secret in secrets.values():
        assert secret not in caplog.text
    assert not any(token in caplog.text for token in fake.tokens)


async def test_options_of_the_request_reach_youtube_and_made_for_kids_is_sent_either_way(tmp_path, fake, secrets):
    daemon, _ = youtube_daemon(tmp_path, fake, size=Q)
    async with running(daemon):
        job_id, _ = await a_finished_video(daemon)
        row = await publish(daemon, job_id, privacy="unlisted", made_for_kids=True, category="28",
                            notify_subscribers=True, extra={"contains_synthetic_media": False})
    resource = fake.videos[row["remote_id"]].resource
    assert resource["status"] == {"privacyStatus": "unlisted", "selfDeclaredMadeForKids": True,
                                  "containsSyntheticMedia": False, "uploadStatus": "uploaded"}
    assert resource["snippet"]["categoryId"] == "28"
    assert next(iter(fake.sessions.values())).params["notifySubscribers"] == "true"


async def test_a_connection_dropped_mid_chunk_resumes_from_the_servers_range(tmp_path, fake, secrets, caplog):
    caplog.set_level(logging.INFO)
    # The second chunk (4 quanta) breaks off after one quantum and a bit: Google kept the quantum.
    fake.drop_at = 4 * Q + Q + 1000
    daemon, _ = youtube_daemon(tmp_path, fake, size=10 * Q + 5, chunk=4 * Q)
    async with running(daemon):
        job_id, data = await a_finished_video(daemon)
        row = await publish(daemon, job_id)
    assert row["state"] == "published" and sent(fake, row) == data
    assert fake.calls["dropped"] == 1 and fake.calls["status"] == 1 and len(fake.sessions) == 1
    # Not from 0, not from the broken chunk's start: from the byte after the server's Range.
    assert fake.chunk_starts == [0, 4 * Q, 5 * Q, 9 * Q]
    assert fake.problems == []
    assert f"resuming the upload at byte {5 * Q} of {10 * Q + 5}" in caplog.text


async def test_a_503_and_an_expired_session_are_survived(tmp_path, fake, secrets):
    fake.fail_chunks_503 = 1
    fake.expire_session_at = 2 * Q  # the first session is gone once it holds a chunk
    daemon, _ = youtube_daemon(tmp_path, fake, size=5 * Q)
    async with running(daemon):
        job_id, data = await a_finished_video(daemon)
        row = await publish(daemon, job_id)
    assert row["state"] == "published" and sent(fake, row) == data
    assert fake.calls["gone"] >= 1 and len(fake.sessions) == 2 and len(fake.videos) == 1
    first, second = fake.sessions.values()
    assert len(first.received) == 2 * Q and first.video_id is None and second.video_id == row["remote_id"]


async def test_an_access_token_expiring_mid_upload_is_refreshed_once_and_the_upload_goes_on(tmp_path, fake, secrets):
    fake.expire_tokens_at = 2 * Q
    daemon, _ = youtube_daemon(tmp_path, fake, size=6 * Q)
    async with running(daemon):
        job_id, data = await a_finished_video(daemon)
        row = await publish(daemon, job_id)
    assert row["state"] == "published" and sent(fake, row) == data
    assert fake.refreshes == 2 and fake.calls["401"] == 1
    assert fake.chunk_starts == [0, 2 * Q, 4 * Q] and len(fake.sessions) == 1


async def test_a_landscape_video_is_a_watch_page_not_a_short(tmp_path, fake, secrets):
    daemon, _ = youtube_daemon(tmp_path, fake, size=Q)
    async with running(daemon):
        job_id, data = await a_finished_video(daemon, "youtube")
        row = await publish(daemon, job_id)
    assert row["url"] == f"https://www.youtube.com/watch?v={row['remote_id']}" and sent(fake, row) == data


async def test_a_fresh_token_refused_too_fails_after_one_refresh_instead_of_looping(tmp_path, fake, secrets):
    fake.refuse_tokens = True
    daemon, _ = youtube_daemon(tmp_path, fake, size=Q)
    async with running(daemon):
        job_id, _ = await a_finished_video(daemon)
        row = await publish(daemon, job_id)
    assert row["state"] == "failed" and "refused a freshly refreshed access token" in row["error"]
    assert "YouTube account acme-shorts" in row["error"]
    assert fake.refreshes == 2 and fake.calls["401"] == 2 and not fake.videos


async def test_a_revoked_refresh_token_fails_the_publication_saying_why(tmp_path, fake, secrets):
    fake.revoked = True
    daemon, _ = youtube_daemon(tmp_path, fake, size=Q)
    async with running(daemon):
        job_id, _ = await a_finished_video(daemon)
        row = await publish(daemon, job_id)
    assert row["state"] == "failed" and fake.calls["start"] == 0
    assert "YouTube account acme-shorts" in row["error"] and "invalid_grant" in row["error"]
    assert "Testing" in row["error"] and "7 days" in row["error"]
    assert not any(secret in row["error"] for secret in secrets.values())


async def test_a_lost_answer_to_the_last_chunk_finds_the_video_instead_of_posting_it_again(tmp_path, fake, secrets):
    fake.lose_final_answer = True
    daemon, _ = youtube_daemon(tmp_path, fake, size=3 * Q)
    async with running(daemon):
        job_id, data = await a_finished_video(daemon)
        row = await publish(daemon, job_id)
    assert row["state"] == "published" and sent(fake, row) == data
    assert fake.calls["lost answer"] == 1 and fake.calls["status"] == 1
    assert len(fake.videos) == 1 and len(fake.sessions) == 1


async def test_quota_exceeded_waits_until_midnight_pacific_then_publishes(tmp_path, fake, secrets):
    clock = Clock(datetime(2026, 12, 3, 7, 50, tzinfo=timezone.utc))  # 23:50 in Los Angeles
    fake.quota_exceeded = True
    daemon, _ = youtube_daemon(tmp_path, fake, size=3 * Q, clock=clock)
    async with running(daemon):
        job_id, data = await a_finished_video(daemon)
        await daemon.publishing.request(job_id, ["youtube"], by="test")

        async def waiting():
            (row,) = await daemon.publishing.for_video(job_id)
            return row if row["not_before"] else None
        row = await wait_until(waiting)
        assert row["state"] == "pending" and row["error"] is None
        assert datetime.fromisoformat(row["not_before"]) == datetime(2026, 12, 3, 8, tzinfo=timezone.utc)
        assert "quota" in row["message"]
        fake.quota_exceeded = False  # Google's reset; the daemon still waits for its own clock
        await asyncio.sleep(0.3)
        assert fake.calls["start"] == 1 and not fake.videos
        clock.advance(11 * 60)
        row = await ended(daemon, job_id)
    assert row["state"] == "published" and sent(fake, row) == data
    assert fake.calls["start"] == 2 and len(fake.videos) == 1


async def test_a_video_id_saved_before_a_crash_is_looked_up_not_uploaded_again(tmp_path, fake, secrets):
    """A node uploaded the whole video, saved YouTube's id, and died before recording it as published."""
    fake.hold_at = 0
    daemon, _ = youtube_daemon(tmp_path, fake, size=2 * Q)
    async with running(daemon):
        job_id, data = await a_finished_video(daemon)
        await daemon.publishing.request(job_id, ["youtube"], by="test")
        await asyncio.wait_for(fake.held.wait(), 30)
        node = daemon.node_id
    already = fake.add_video(data)
    async with Store.open(tmp_path / "var" / "db.sqlite3") as store:
        # What the stopped node's upload would have saved had it finished before it died: its claim is still on.
        pub = await store.claim_publication(["youtube"], node_id=node)  # released at shutdown: claim it again
        assert pub is not None and pub.state == "uploading"
        assert await store.save_publication(pub.id, pub.fence, state="processing", facts={"video_id": already})
        await store.release_publications(node)
    fake.hold_at = None
    fake.release.set()
    daemon, _ = youtube_daemon(tmp_path, fake, size=2 * Q)
    async with running(daemon):
        row = await ended(daemon, job_id)
    assert row["state"] == "published" and row["remote_id"] == already
    assert fake.calls["start"] == 1 and len(fake.videos) == 1  # the first life's session only, no new upload
    assert fake.calls["videos.list"] == 1


async def test_the_accounts_check_names_the_channel_and_says_why_it_fails(tmp_path, fake, secrets, capsys):
    from avatar_daemon import cli

    make_settings(tmp_path, notifiers=["log"], publishing={"accounts": {ACCOUNT: {"platform": "youtube"}}},
                  plugins={"settings": {"youtube": fake.settings()}})

    def accounts() -> tuple[int, str]:  # in a thread: the command runs an event loop of its own
        with pytest.raises(SystemExit) as exit_:
            cli.main(["--config", str(tmp_path / "daemon.yaml"), "accounts"])
        out = capsys.readouterr()
        return exit_.value.code, out.out + out.err

    code, out = await asyncio.to_thread(accounts)
    assert code == 0 and 'ok: channel "Acme Shorts" (UCfakechannel0000000001)' in out, out
    fake.readonly_scope = False
    code, out = await asyncio.to_thread(accounts)
    assert code == 1 and "insufficient authentication scopes" in out and "youtube.readonly" in out, out
    assert not any(secret in out for secret in secrets.values())


async def test_youtubes_views_likes_and_comments_come_back_into_the_analytics(tmp_path, fake, secrets):
    daemon, _ = youtube_daemon(tmp_path, fake, size=Q)
    async with running(daemon):
        job_id, _ = await a_finished_video(daemon)
        row = await publish(daemon, job_id)
        video = fake.videos[row["remote_id"]]
        video.views, video.likes, video.comments = 1234, 56, 7
        assert await daemon.publishing.figures_once() == 1
        totals = await daemon.store.analytics(None)
    (mine,) = [v for v in totals["by_video"] if v["key"] == job_id]
    assert (mine["view"], mine["like"], mine["comment"]) == (1234, 56, 7)
    assert {r["key"]: r["view"] for r in totals["by_platform"]}["youtube"] == 1234


async def test_figures_are_read_fifty_ids_a_call(tmp_path, fake, secrets):
    from avatar_daemon.accounts import Account
    import aiohttp
    from avatar_daemon_plugins.youtube.publisher import YouTubePublisher

    ids = [fake.add_video(b"x", f"video {n}") for n in range(51)]
    fake.videos[ids[50]].views, fake.videos[ids[50]].likes, fake.videos[ids[50]].comments = 1234, 56, 7
    publisher = YouTubePublisher(YouTubeSettings(**fake.settings()), lambda: datetime.now(timezone.utc))
    account = Account(ACCOUNT, "youtube")
    async with aiohttp.ClientSession() as http:
        figures = await publisher.figures(account, ids + ["gone-video"], http)
    assert set(figures) == set(ids)  # the one YouTube no longer knows is left out
    assert (figures[ids[50]].views, figures[ids[50]].likes, figures[ids[50]].comments) == (1234, 56, 7)
    assert fake.calls["videos.list"] == 2 and fake.refreshes == 1


# ---- a real daemon process, killed mid-upload ---------------------------------------------------

FILE_RENDERER = """
import random
from avatar_daemon import RenderResult, hookimpl


class FileRenderer:
    name = "file"
    max_concurrency = 1

    def list_avatars(self):
        return []

    async def render(self, request, progress):
        request.output_dir.mkdir(parents=True, exist_ok=True)
        video = request.output_dir / "video.mp4"
        video.write_bytes(random.Random(1).randbytes(SIZE))
        return RenderResult(video=video, duration=30.0)


@hookimpl
def register_renderers(register):
    register(FileRenderer())
"""


class DaemonProcess:
    """`python -m avatar_daemon run`, its log kept; `ready` once it says it is running."""

    def __init__(self, config: Path, env: dict[str, str], log: list[str]):
        self.proc = subprocess.Popen([sys.executable, "-m", "avatar_daemon", "run", "--config", str(config)],
                                     cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.ready = threading.Event()
        threading.Thread(target=self._read, args=(log,), daemon=True).start()

    def _read(self, log: list[str]) -> None:
        for line in self.proc.stderr:
            log.append(line.rstrip())
            if "avatar-daemon running" in line:
                self.ready.set()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)


def query(db: Path, sql: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as con:
        return con.execute(sql).fetchall()


async def poll(what: str, get, log: list[str], timeout: float = 60.0):
    """`get()` once it returns something true, checked without blocking the fake's loop for long."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(sqlite3.OperationalError):  # no database yet, or a writer holds it
            if value := get():
                return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} did not happen in {timeout:.0f} s; the daemon said:\n" + "\n".join(log[-40:]))


@pytest.mark.timeout(240)  # a hang guard: on a loaded machine each start takes seconds
async def test_a_daemon_killed_mid_upload_resumes_from_the_confirmed_offset_and_posts_once(tmp_path, fake):
    size = 8 * Q + 123
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "file_renderer.py").write_text(FILE_RENDERER.replace("SIZE", str(size)))
    (tmp_path / "inbox").mkdir()
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({
        "data_dir": "var", "database": "var/db.sqlite3", "inbox": {"path": "inbox", "settle_seconds": 0.05},
        "jobs": {"output_dir": "var/videos"}, "http": {"enabled": False}, "default_renderer": "file",
        "notifiers": ["log"], "campaigns_dir": "campaigns",
        "publishing": {"accounts": {ACCOUNT: {"platform": "youtube"}}, "poll_seconds": 0.1, "retry_seconds": 0.1},
        "plugins": {"plugins_dir": "plugins",
                    "only": ["hackernews", "template_writer", "formats", "log_notifier", "youtube", "file_renderer"],
                    "settings": {"youtube": {**fake.settings(), "chunk_size": Q, "backoff_seconds": 0.01}}}}))
    env = {**os.environ, **{f"AVATAR_DAEMON_ACME_SHORTS_{k.upper()}": v for k, v in FakeYouTube.secrets().items()}}
    db = tmp_path / "var" / "db.sqlite3"
    log: list[str] = []
    daemons: list[DaemonProcess] = []
    try:
        first = DaemonProcess(config, env, log)
        daemons.append(first)
        await poll("the first start", first.ready.is_set, log)
        tmp = tmp_path / "inbox" / "hn.json.part"
        tmp.write_bytes(fixture_bytes("hn_algolia.json"))
        tmp.rename(tmp_path / "inbox" / "hn.json")
        (job_id, result), *_ = await poll("a finished video", lambda: query(
            db, "SELECT id, result FROM video_generations WHERE status = 'completed' ORDER BY id"), log)
        data = Path(json.loads(result)["video"]).read_bytes()
        assert len(data) == size

        fake.hold_at = 3 * Q  # three chunks land, the fourth hangs: the moment to kill
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "avatar_daemon", "publish", str(job_id), "--to", "youtube", "--config", str(config),
            cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await cli.communicate()
        assert cli.returncode == 0, out.decode()
        await asyncio.wait_for(fake.held.wait(), 60)
        (state, offset, facts), = query(db, "SELECT state, upload_offset, facts FROM publications")
        assert (state, offset) == ("uploading", 3 * Q)  # saved before the next chunk went out
        session_uri = json.loads(facts)["session_uri"]
        first.kill()

        fake.hold_at = None
        fake.release.set()
        second = DaemonProcess(config, env, log)
        daemons.append(second)
        (remote_id, url), = await poll("the publication's end", lambda: query(
            db, "SELECT remote_id, url FROM publications WHERE state IN ('published', 'failed')"), log)
    finally:
        for d in daemons:
            d.kill()
    assert remote_id and url == f"https://youtube.com/shorts/{remote_id}", log[-20:]
    assert len(fake.sessions) == 1 and len(fake.videos) == 1 and fake.problems == []
    assert fake.videos[remote_id].data == data
    (session,) = fake.sessions.values()
    assert session_uri.endswith(session.id) and session.video_id == remote_id
    # Chunks 0, 1 and 2, the fourth lost with the first life; then, after one status query, on from 3.
    assert fake.chunk_starts == [0, Q, 2 * Q, 3 * Q, 3 * Q, 4 * Q, 5 * Q, 6 * Q, 7 * Q, 8 * Q]
    assert fake.calls["status"] == 1 and fake.calls["lost"] == 1
    assert not any(secret in line for line in log for secret in FakeYouTube.secrets().values())
