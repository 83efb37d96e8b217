"""`avatar-daemon doctor`: each line from a real attempt, against the fake HeyGen and Slack on loopback."""

import json
import shutil
import os
import socket
import sqlite3

import aiohttp
import pytest

from avatar_daemon import Finding, doctor
from avatar_daemon_plugins.local_renderer import checks, festival
from avatar_daemon.testing import make_daemon, make_settings, running
from tests.fake_heygen import API_KEY, FakeHeyGen
from tests.fake_slack import FakeSlack

SLACK_AND_HEYGEN = ("HEYGEN_API_KEY", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_API_URL",
                    "SLACK_MODE", "CREDENTIALS_DIRECTORY")


@pytest.fixture(autouse=True)
def no_keys(monkeypatch):
    for name in SLACK_AND_HEYGEN:
        monkeypatch.delenv(name, raising=False)


def by_check(findings):
    return {f.check: f for f in findings}


async def examine(settings):
    """The doctor's findings as the command makes them: a daemon built now, so plugins read the environment now."""
    return by_check(await doctor.examine(settings))


async def test_a_fresh_install_is_ready(tmp_path):
    found = await examine(make_settings(tmp_path))
    for name in ("fonts", "espeak-ng", "piper voice", "voices", "data folder", "inbox", "videos folder", "http port",
                 "database", "plugins"):
        assert found[name].status == "ok", found[name]
    assert found["database"].detail.endswith("will be created at start")
    assert found["heygen key"].status == "skip" and found["slack"].status == "skip"


async def test_folders_port_and_database_that_would_fail(tmp_path):
    (tmp_path / "var").write_text("a file where the data folder should be")
    listening = socket.create_server(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    try:
        settings = make_settings(tmp_path, http={"port": port}, inbox={"path": "/proc/avatar-doctor/inbox"},
                                 database=str(tmp_path / "broken.sqlite3"))
        (tmp_path / "broken.sqlite3").write_bytes(b"this is not a database" * 100)
        found = by_check(await doctor.run_checks(settings, ["lobsters: No module named 'lobsters'"]))
    finally:
        listening.close()
    assert found["data folder"].status == "fail" and "is not a folder" in found["data folder"].detail
    assert found["inbox"].status == "fail" and found["inbox"].detail.startswith("/proc is not writable")
    assert found["http port"].status == "fail" and f"127.0.0.1:{port} is in use by another program" in found["http port"].detail
    assert found["database"].status == "fail" and "broken.sqlite3" in found["database"].detail
    assert found["plugins"].status == "fail" and "lobsters" in found["plugins"].detail


async def test_the_port_of_a_running_daemon_is_not_a_failure(tmp_path):
    daemon = make_daemon(tmp_path, http={"port": 0}, notifiers=["log"])
    async with running(daemon):
        await daemon.http_ready.wait()
        async with aiohttp.ClientSession() as http:
            finding = await doctor.check_port(http, "127.0.0.1", daemon.http_port)
    assert finding.status == "ok", finding
    assert finding.detail == f"127.0.0.1:{daemon.http_port} is served by a running avatar-daemon (node {daemon.node_id})"


async def test_an_existing_database_opens(tmp_path):
    settings = make_settings(tmp_path, notifiers=["log"])
    async with make_daemon(tmp_path, settings=settings).started():
        pass  # creates and migrates it
    finding = await doctor.check_database(str(settings.database))
    assert finding.status == "ok" and "opens (" in finding.detail
    with sqlite3.connect(settings.database) as db:
        assert f"({db.execute('SELECT count(*) FROM sqlite_master WHERE type = ?', ('table',)).fetchone()[0]} " \
               "tables)" in finding.detail


async def test_postgresql_is_reached_and_a_closed_port_is_not():
    free = socket.create_server(("127.0.0.1", 0))
    closed = free.getsockname()[1]
    free.close()
    finding = await doctor.check_database(f"postgresql://postgres:pw-not-shown@127.0.0.1:{closed}/test")
    assert finding.status == "fail" and "pw-not-shown" not in finding.detail and ":***@" in finding.detail
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
    except OSError:
        if os.environ.get("CI"):
            raise
        pytest.skip("no PostgreSQL at 127.0.0.1:5432 (start it to run this check)")
    finding = await doctor.check_database("postgresql://postgres@127.0.0.1:5432/test")
    assert finding.status == "ok" and finding.detail == "PostgreSQL answers at 127.0.0.1:5432"
    # Something that answers, but not as PostgreSQL: the fake Slack's HTTP server.
    async with FakeSlack().serve() as slack:
        finding = await doctor.check_database(f"postgresql://127.0.0.1:{slack.port}/x")
    assert finding.status == "fail" and "not as PostgreSQL does" in finding.detail


async def test_heygen_key_is_tried_against_the_configured_api(tmp_path, monkeypatch):
    (tmp_path / "media").mkdir()
    server = FakeHeyGen(tmp_path / "media", quota=1234)
    async with server.serve():
        settings = make_settings(tmp_path, plugins={"settings": {"heygen": {"base_url": server.url}}})
        monkeypatch.setenv("HEYGEN_API_KEY", API_KEY)
        good = (await examine(settings))["heygen key"]
        monkeypatch.setenv("HEYGEN_API_KEY", "hg-revoked-key-987654")
        bad = (await examine(settings))["heygen key"]
    assert good.status == "ok" and good.detail == "accepted (1234 quota left)"
    assert bad.status == "fail" and bad.detail.startswith("HeyGen refused the key (401)")
    assert "hg-revoked-key-987654" not in bad.detail and server.calls["remaining_quota"] == 2


async def test_slack_tokens_are_tried_for_the_mode(tmp_path, monkeypatch):
    async with FakeSlack().serve() as slack:
        monkeypatch.setenv("SLACK_API_URL", f"{slack.url}/api/")
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-doctor-test-bot")
        settings = make_settings(tmp_path)
        monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-doctor-test-app")
        socket_mode = await examine(settings)
        monkeypatch.setenv("SLACK_APP_TOKEN", "xoxb-pasted-into-the-wrong-place")
        wrong = await examine(settings)
        monkeypatch.setenv("SLACK_MODE", "http")
        http_mode = await examine(settings)
    assert socket_mode["slack bot"].status == "ok" and socket_mode["slack bot"].detail == "bot avatarbot in Example"
    assert socket_mode["slack app"].status == "ok"
    assert wrong["slack app"].status == "fail" and "not_allowed_token_type" in wrong["slack app"].detail
    assert http_mode["slack signing"].status == "fail" and "SLACK_SIGNING_SECRET" in http_mode["slack signing"].detail
    assert [m for m, _ in slack.calls].count("auth.test") == 3


def test_the_command_prints_a_line_each_and_exits_1_on_a_failure(tmp_path, capsys):
    from avatar_daemon import cli

    make_settings(tmp_path, http={"port": 0})
    config = str(tmp_path / "daemon.yaml")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["doctor", "--config", config])
    lines = capsys.readouterr().out.splitlines()
    assert exit_.value.code == 0, lines
    assert lines[0].split()[:2] == ["ok", "configuration"] and any(line.startswith("skip  heygen key") for line in lines)
    shutil.rmtree(tmp_path / "var")  # the first run made it (the node id is kept there)
    (tmp_path / "var").write_text("not a folder")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["doctor", "--json", "--config", config])
    rows = json.loads(capsys.readouterr().out)
    assert exit_.value.code == 1
    assert {"check": "data folder", "status": "fail",
            "detail": f"{tmp_path / 'var'} is not a folder: move it away or point the setting elsewhere"} in rows


def test_voices_say_which_engine_each_presenter_gets_and_how_to_get_festival(tmp_path, monkeypatch):
    espeak, piper = checks.check_espeak(), checks.check_piper_voice()
    if shutil.which("festival") or os.environ.get("CI"):  # CI installs it
        here = checks.check_voices(piper, espeak, festival.available())
        assert here.status == "ok" and "en-us-female, en-gb-female (festival cmu_us_slt_arctic_hts)" in here.detail
        assert "apt-get" not in here.detail
    # festival without the voice: festival exits non-zero on the unknown voice function, so it is not used
    monkeypatch.setenv("PATH", str(tmp_path))
    fake = tmp_path / "festival"
    fake.write_text("#!/bin/sh\necho 'SIOD ERROR: unbound variable : voice_cmu_us_slt_arctic_hts' >&2\nexit 255\n")
    fake.chmod(0o755)
    assert not festival.available()
    # without it: the female voices fall back to espeak-ng, and the line says how to do better
    without = checks.check_voices(piper, espeak, False)
    assert without.status == "ok" and "en-us-female, en-us-male, en-gb-female, en-gb-male (espeak-ng)" in without.detail
    assert without.detail.endswith("for a smoother female voice, apt-get install festival festvox-us-slt-hts")
    # nothing at all can speak: that fails
    broken = Finding.fail("espeak-ng", "missing")
    nothing = checks.check_voices(broken, broken, False)
    assert nothing.status == "fail" and "no voice can speak" in nothing.detail


async def test_a_check_that_breaks_is_a_failing_line_and_the_others_still_run(tmp_path):
    class Broken:
        name = "lobsters"

        async def run(self, http):
            raise KeyError("api_url")

    class Fine:
        name = "fine"

        async def run(self, http):
            return [Finding.ok("fine", "it works")]

    found = by_check(await doctor.run_checks(make_settings(tmp_path), [], [Broken(), Fine()]))
    assert found["lobsters"].status == "fail" and "the check itself failed: KeyError" in found["lobsters"].detail
    assert found["fine"].status == "ok"
