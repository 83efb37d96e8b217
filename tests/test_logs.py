"""Log lines as text or JSON, masked either way, and stamped once under journald."""

import json
import logging
import os
import sys

from avatar_daemon.logs import setup_logging, under_journald


def test_json_lines_for_log_shippers_with_secrets_masked(capsys, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-json-log-secret-42")
    setup_logging("INFO", "json")
    try:
        logging.getLogger("avatar_daemon.jobs").info("job %s uses xoxb-json-log-secret-42", 7, extra={"job_id": 7})
        try:
            raise RuntimeError("refused xoxb-json-log-secret-42")
        except RuntimeError:
            logging.getLogger("avatar_daemon.slack").exception("upload failed")
    finally:
        setup_logging("WARNING")
    err = capsys.readouterr().err
    assert "xoxb-json-log-secret-42" not in err
    first, second = [json.loads(line) for line in err.splitlines()]
    assert first["level"] == "INFO" and first["logger"] == "avatar_daemon.jobs" and first["job_id"] == 7
    assert first["message"] == "job 7 uses ***" and first["time"][:2] == "20"
    assert second["level"] == "ERROR" and "RuntimeError: refused ***" in second["exc_info"]


def test_text_lines_carry_a_time_stamp(capsys):
    setup_logging("INFO", "text")
    try:
        logging.getLogger("avatar_daemon").warning("plain")
    finally:
        setup_logging("WARNING")
    line = capsys.readouterr().err.strip()
    assert line.endswith("WARNING avatar_daemon: plain") and line[:2] == "20"


def test_journald_stamps_the_lines_so_the_daemon_does_not(tmp_path, monkeypatch):
    """JOURNAL_STREAM names stderr's device and inode when systemd connected it to the journal."""
    err = tmp_path / "stderr"
    with open(err, "w") as f:
        st = os.fstat(f.fileno())
        assert under_journald(f, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        assert not under_journald(f, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})  # stderr redirected
        assert not under_journald(f, {})
        monkeypatch.setattr(sys, "stderr", f)  # what the journal's stream looks like to the process
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        try:
            for fmt in ("text", "json"):
                setup_logging("INFO", fmt)
                logging.getLogger("avatar_daemon").info("hello journal")
        finally:
            setup_logging("WARNING")
    text, js = err.read_text().splitlines()
    assert text == "INFO avatar_daemon: hello journal"
    assert json.loads(js) == {"level": "INFO", "logger": "avatar_daemon", "message": "hello journal"}
