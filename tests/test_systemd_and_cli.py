"""The daemon under a NOTIFY_SOCKET of our own, and the command line as users run it."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from avatar_daemon.settings import load_settings
from avatar_daemon.errors import ConfigError
from tests.conftest import FIXTURES, REPO

import pytest


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "daemon.yaml"
    cfg.write_text(json.dumps({"inbox": {"path": "inbox", "settle_seconds": 0.05}, "data_dir": "var",
                               "database": "var/db.sqlite3", "jobs": {"output_dir": "var/videos"},
                               "http": {"port": 0}, "notifiers": ["log"]}))
    return cfg


# The CLI runs in-process where a subprocess proves nothing more; the daemon under systemd's
# socket and a closed pipe need a real process.
def _main(*argv) -> int:
    from avatar_daemon import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(list(argv))
    return exit_.value.code


def test_ready_and_watchdog_over_notify_socket(tmp_path):
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(30)
    env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "400000",
           "AVATAR_DAEMON_CONFIG": str(_config(tmp_path)), "AVATAR_DAEMON__log_format": "json"}
    proc = subprocess.Popen([sys.executable, "-m", "avatar_daemon", "run"], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        messages = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("WATCHDOG=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        assert any("READY=1" in m for m in messages)
        assert any("WATCHDOG=1" in m and "STATUS=" in m for m in messages)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0  # stops within the stop timeout, cleanly
        assert "STOPPING=1" in sock.recv(4096).decode()
        logged = [json.loads(line) for line in proc.stderr.read().decode().splitlines()]  # log_format: json
        assert logged and all({"time", "level", "logger", "message"} <= set(r) for r in logged)
    finally:
        proc.kill()
        sock.close()


def test_script_json(tmp_path, capsys):
    assert _main("script", str(FIXTURES / "research" / "hn_algolia.json"), "--json",
                 "--config", str(_config(tmp_path))) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["source"] == "hackernews"
    assert {"text", "score", "url"} <= set(data["insights"][0])
    assert {"title", "text", "estimated_seconds"} <= set(data["script"])
    assert "SHA-1" in data["script"]["text"]


def test_rejected_file_exits_1_with_reason(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"hits": [')
    assert _main("script", str(bad), "--config", str(_config(tmp_path))) == 1
    assert "bad.json: not valid JSON" in capsys.readouterr().err


def test_check_reports_path_and_line(tmp_path, capsys):
    cfg = tmp_path / "daemon.yaml"
    cfg.write_text("inbox:\n  path: inbox\n  max_file_bytes: lots\ndefault_formats: [tiktok]\n")
    (tmp_path / "campaigns").mkdir()
    bad_campaign = tmp_path / "campaigns" / "bad.yaml"
    bad_campaign.write_text("name: x\nschedule: [daily\n")
    assert _main("check", "--config", str(cfg)) == 1
    assert f"{cfg}:3: inbox.max_file_bytes:" in capsys.readouterr().out
    assert _main("check", "--config", str(_config(tmp_path))) == 1
    assert f"{bad_campaign}:3: invalid YAML" in capsys.readouterr().out
    assert _main("check", "--json", "--config", str(_config(tmp_path))) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and [p for p in report["problems"] if p.startswith(f"{bad_campaign}:3:")]
    bad_campaign.unlink()
    assert _main("check", "--json", "--config", str(_config(tmp_path))) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "problems": []}


def test_env_overrides_settings(tmp_path):
    s = load_settings(_config(tmp_path), environ={"AVATAR_DAEMON__inbox__max_file_bytes": "123",
                                                  "AVATAR_VIDEO_PORT": "9999"})
    assert s.inbox.max_file_bytes == 123 and s.http.port == 9999
    with pytest.raises(ConfigError, match="http.port"):
        load_settings(_config(tmp_path), environ={"AVATAR_VIDEO_PORT": "many"})


def test_plugins_and_avatars_listings(tmp_path, capsys):
    assert _main("plugins", "--json", "--config", str(_config(tmp_path))) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["reddit"]["origin"] == "builtin" and rows["reddit"]["registers"] == {"sources": ["reddit"]}
    assert _main("avatars", "--json", "--config", str(_config(tmp_path))) == 0
    avatars = json.loads(capsys.readouterr().out)
    assert [a["id"] for a in avatars][:3] == ["sarah", "mike", "emma"] and len(avatars) == 8


def test_render_prints_mp4_last_or_json(tmp_path, capsys):
    script = tmp_path / "hello.txt"
    script.write_text("Hello from the command line.")
    argv = ["render", str(script), "--format", "portrait-720", "--out", str(tmp_path / "out"),
            "--config", str(_config(tmp_path))]
    assert _main(*argv) == 0
    out = capsys.readouterr()
    last = Path(out.out.strip().splitlines()[-1])
    assert last.suffix == ".mp4" and last.stat().st_size > 1000
    assert "100%" in out.err or "completed" in out.err
    # --json: one object on stdout, the progress still on stderr; the file is the same kind.
    assert _main(*argv, "--json") == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert report["source"] == "text" and report["estimated_seconds"] > 0
    (video,) = report["videos"]
    assert video["format"] == "portrait-720" and video["status"] == "completed" and video["error"] is None
    assert Path(video["video"]).suffix == ".mp4" and Path(video["video"]) != last
    assert "completed" in out.err or "100%" in out.err


def test_cli_campaigns_pause_resume_run_and_batch(tmp_path, capsys):
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "ai.yaml").write_text(json.dumps({
        "name": "ai", "sources": [{"source": "reddit"}], "formats": ["tiktok"], "max_videos_per_day": 2,
        "schedule": {"every": "daily", "at": "09:00", "timezone": "Europe/Berlin"}}))
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"data_dir": "var", "database": "var/db.sqlite3", "inbox": {"path": "inbox"},
                                  "jobs": {"output_dir": "var/videos"}, "campaigns_dir": "campaigns",
                                  "notifiers": ["log"]}))

    def cli(*args):
        code = _main(*args, "--config", str(config))
        out = capsys.readouterr()
        return code, out.out, out.err

    assert cli("campaigns", "pause", "ai")[:2] == (0, "ai paused\n")
    code, out, _ = cli("campaigns", "--json")
    listed = json.loads(out)
    assert listed[0]["paused"] is True and listed[0]["schedule"] == "daily at 09:00 Europe/Berlin"
    assert json.loads(cli("campaigns", "resume", "ai", "--json")[1]) == {"name": "ai", "paused": False}
    code, out, _ = cli("campaigns", "run", "ai")
    assert code == 0 and "campaign ai (manual): 0 research considered" in out
    code, out, _ = cli("campaigns", "run", "ai", "--json")
    run = json.loads(out)
    assert code == 0 and run["campaign"] == "ai" and run["trigger"] == "manual" and run["job_ids"] == []
    assert run["message"].startswith("campaign ai (manual)")
    code, _, err = cli("campaigns", "run", "nope")
    assert code == 1 and "no campaign named 'nope'" in err
    code, out, _ = cli("batch", "--hours-back", "24")
    assert code == 0 and "campaign batch (batch)" in out
    code, out, _ = cli("batch", "--json")
    assert code == 0 and json.loads(out)["trigger"] == "batch"
    schema = json.loads(cli("schema", "campaign")[1])
    assert schema["properties"]["schedule"]["$ref"].endswith("Schedule")


def test_secrets_never_logged(caplog):
    import logging

    from avatar_daemon.logs import RedactingFilter

    os.environ["SLACK_BOT_TOKEN"] = "xoxb-very-secret-123"
    try:
        record = logging.LogRecord("x", logging.INFO, "f", 1, "token is %s", ("xoxb-very-secret-123",), None)
        RedactingFilter().filter(record)
        assert "xoxb" not in record.getMessage() and "***" in record.getMessage()
    finally:
        del os.environ["SLACK_BOT_TOKEN"]


def test_systemd_credentials_are_masked_too(tmp_path, monkeypatch):
    import logging

    from avatar_daemon.logs import RedactingFilter

    (tmp_path / "HEYGEN_API_KEY").write_text("hg-credential-file-secret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    record = logging.LogRecord("x", logging.INFO, "f", 1, "calling with %s", ("hg-credential-file-secret",), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "calling with ***"


def test_users_defaults_must_name_real_avatars(tmp_path):
    (tmp_path / "users.yaml").write_text("workspaces:\n  T1:\n    tier: pro\n    user_defaults:\n"
                                         "      U1: {avatar: nobody, format: youtube}\n")
    (tmp_path / "daemon.yaml").write_text("users_file: users.yaml\n")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "daemon.yaml", environ={})
    assert err.value.problems == [f"{tmp_path / 'users.yaml'}:5: workspaces.T1.user_defaults.U1.avatar: "
                                  "no avatar profile named 'nobody'"]


# ---- the command line's own options, in-process where a subprocess proves nothing more -------------


def test_config_before_the_command_reaches_the_command(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("inbox:\n  max_file_bytes: lots\n")
    assert _main("--config", str(bad), "check") == 1
    out = capsys.readouterr().out
    assert f"{bad}:2: inbox.max_file_bytes:" in out and "configuration OK" not in out


def test_a_named_config_file_that_is_missing_is_an_error(tmp_path, capsys, monkeypatch):
    missing = tmp_path / "nope.yaml"
    for argv in (["--config", str(missing), "check"], ["check", "--config", str(missing)]):
        assert _main(*argv) == 1
        out = capsys.readouterr().out  # check lists its problems on stdout
        assert out.strip() == f"{missing}: no such configuration file"
    monkeypatch.setenv("AVATAR_DAEMON_CONFIG", str(missing))
    assert _main("videos") == 1
    assert f"{missing} (from AVATAR_DAEMON_CONFIG): no such configuration file" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_settings(missing, environ={})


def test_version_and_log_level_on_every_command(tmp_path, capsys):
    import logging

    import importlib.metadata

    assert _main("--version") == 0
    assert capsys.readouterr().out.strip() == f"avatar-daemon {importlib.metadata.version('avatar-daemon')}"
    cfg = str(_config(tmp_path))
    for argv, level in ((["check"], logging.WARNING), (["-v", "check"], logging.INFO),
                        (["check", "-vv"], logging.DEBUG), (["--log-level", "error", "schema", "campaign"],
                                                           logging.ERROR)):
        assert _main(*argv, "--config", cfg) == 0
        assert logging.getLogger().level == level, argv
    capsys.readouterr()


def test_a_secret_in_a_plugins_error_never_prints(tmp_path, capsys, monkeypatch):
    secret = "lobster-key-5ecr3t-value"
    monkeypatch.setenv("LOBSTERS_API_KEY", secret)
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "leaky.py").write_text(
        "import os\nraise RuntimeError('login refused for key ' + os.environ['LOBSTERS_API_KEY'])\n")
    cfg = tmp_path / "daemon.yaml"
    cfg.write_text(json.dumps({"data_dir": "var", "database": "var/db.sqlite3", "notifiers": ["log"],
                               "plugins": {"plugins_dir": "plugins"}}))
    for argv in (["plugins"], ["plugins", "--json"], ["check"]):
        _main(*argv, "--config", str(cfg))
        captured = capsys.readouterr()
        assert "login refused for key ***" in captured.out + captured.err, argv  # the error, masked
        assert secret not in captured.out + captured.err, argv


def test_videos_retry_from_the_command_line(tmp_path, capsys):
    import asyncio

    from avatar_daemon.models import JobEvent, JobState
    from avatar_daemon.store import NewJob
    from avatar_daemon.testing import make_daemon, make_settings

    settings = make_settings(tmp_path, default_renderer="local", notifiers=["log"])

    async def seed() -> list[int]:
        daemon = make_daemon(tmp_path, settings=settings)
        async with daemon.started():
            ids = await daemon.store.add_jobs([NewJob("local", "tiktok", "sarah", f"v{i}", {}) for i in range(2)])
            for job_id, state in zip(ids, (JobState.failed, JobState.completed)):
                await daemon.bus.publish(JobEvent(job_id=job_id, state=state, message="out of disk"))
        return ids

    failed, completed = asyncio.run(seed())
    cfg = str(tmp_path / "daemon.yaml")
    assert _main("videos", "retry", str(failed), "--config", cfg) == 0
    assert f"video {failed} (v0) is queued again" in capsys.readouterr().out
    assert _main("videos", "--status", "queued", "--config", cfg) == 0
    assert capsys.readouterr().out.split()[:2] == [str(failed), "queued"]
    for job_id, reason in ((failed, "is queued, not ended"), (completed, "completed; there is nothing to retry"),
                           (999, "no video 999")):
        assert _main("videos", "retry", str(job_id), "--config", cfg) == 1
        assert reason in capsys.readouterr().err


def test_videos_into_a_closed_pipe_ends_quietly(tmp_path):
    """`avatar-daemon videos | head`: the reader leaves early, and no traceback follows."""
    import asyncio

    from avatar_daemon.store import NewJob
    from avatar_daemon.testing import make_daemon, make_settings

    settings = make_settings(tmp_path, default_renderer="local", notifiers=["log"])

    async def seed() -> None:
        daemon = make_daemon(tmp_path, settings=settings)
        async with daemon.started():  # far more than a pipe's buffer holds
            await daemon.store.add_jobs([NewJob("local", "tiktok", "sarah", f"video {i}", {}) for i in range(3000)])

    asyncio.run(seed())
    proc = subprocess.Popen([sys.executable, "-m", "avatar_daemon", "videos", "--limit", "3000", "--config",
                             str(tmp_path / "daemon.yaml")], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert first.split()[1] == b"queued" and err == ""
