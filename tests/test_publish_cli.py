"""`avatar-daemon accounts` and `avatar-daemon publish`, in-process, against a platform on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from avatar_daemon import cli
from avatar_daemon.models import JobEvent, JobState
from avatar_daemon.store import NewJob, Store
from avatar_daemon.testing import make_settings
from tests.fake_platform import FakePlatform

TOKEN = "s3cret-access-token"
PLUGIN = '''
from avatar_daemon import hookimpl
from tests.fake_platform import LoopbackPublisher


@hookimpl
def register_publishers(register, daemon):
    register(LoopbackPublisher(daemon.plugin_config("loopvid")["base_url"]))
'''


@pytest.fixture
def platform():
    """The fake platform served from a loop of its own: the CLI runs its own asyncio.run here."""
    loop = asyncio.new_event_loop()
    ready, stop = threading.Event(), None
    fake = FakePlatform(token=TOKEN)

    async def serve():
        nonlocal stop
        stop = asyncio.Event()
        async with fake.serve():
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield fake
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)


@pytest.fixture
def config(tmp_path, platform, monkeypatch):
    monkeypatch.setenv("AVATAR_DAEMON_LOOP_MAIN_TOKEN", TOKEN)
    monkeypatch.delenv("AVATAR_DAEMON_LOOP_SPARE_TOKEN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "loop_publishing.py").write_text(PLUGIN)
    make_settings(tmp_path, notifiers=["log"],
                  plugins={"plugins_dir": "plugins", "settings": {"loopvid": {"base_url": platform.url}}},
                  publishing={"accounts": {"loop-main": {"platform": "loopvid", "default": True},
                                           "loop-spare": {"platform": "loopvid"},
                                           "elsewhere": {"platform": "vimeo"}}})
    return tmp_path / "daemon.yaml"


@pytest.fixture
def job_id(config, tmp_path) -> int:
    """A completed job whose video is on disk, in the store the config names: what publish takes."""
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\0" * 1000)

    async def finished() -> int:
        async with Store.open(tmp_path / "var" / "db.sqlite3") as store:
            (job_id,) = await store.add_jobs([NewJob(renderer="fake", format="tiktok", avatar_id="sarah", title="T",
                                                     request={})])
            await store.record_event(JobEvent(job_id=job_id, state=JobState.completed, percent=100),
                                     result={"video": str(video)})
            return job_id

    return asyncio.run(finished())


def run(capsys, *argv) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_:
        cli.main(list(argv))
    out = capsys.readouterr()
    return exit_.value.code, out.out + out.err


def test_accounts_lists_and_checks_each_without_printing_a_secret(config, capsys):
    code, out = run(capsys, "--config", str(config), "accounts", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 1  # one account does not work: a script sees it
    assert rows["loop-main"] == {"name": "loop-main", "platform": "loopvid", "default": True, "ok": True,
                                 "check": "channel 'Loopback Channel' (UC1)"}
    assert rows["loop-spare"]["ok"] is False and "AVATAR_DAEMON_LOOP_SPARE_TOKEN" in rows["loop-spare"]["check"]
    assert rows["elsewhere"]["ok"] is False and "no publisher plugin for vimeo" in rows["elsewhere"]["check"]
    assert TOKEN not in out

    code, out = run(capsys, "--config", str(config), "accounts", "--no-check")
    assert code == 1 and "loop-main" in out and "not checked" in out and TOKEN not in out


def test_publish_queues_the_video_once_with_the_options_given(config, tmp_path, job_id, capsys):
    code, out = run(capsys, "--config", str(config), "publish", str(job_id), "--to", "loopvid",
                    "--privacy", "unlisted", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert (row["platform"], row["account"], row["state"], row["requested_by"]) == (
        "loopvid", "loop-main", "pending", "command line")
    code, out = run(capsys, "--config", str(config), "publish", str(job_id), "--to", "loopvid")
    assert code == 0 and out.count("loop-main") == 1 and "pending" in out  # asked again: the same row
    code, out = run(capsys, "--config", str(config), "publish", str(job_id), "--to", "vimeo")
    assert code != 0 and "no publisher for platform 'vimeo'" in out

    async def options() -> dict:
        async with Store.open(tmp_path / "var" / "db.sqlite3") as store:
            (pub,) = await store.publications(job_id)
            return pub.options
    assert asyncio.run(options())["privacy"] == "unlisted"


def test_publish_wait_without_a_running_daemon_says_so(config, job_id, capsys):
    code, out = run(capsys, "--config", str(config), "publish", str(job_id), "--to", "loopvid", "--wait",
                    "--timeout", "0.2")
    assert code != 0 and "after 0.2 s still loopvid pending" in out and "is one running?" in out
