"""A real daemon process, SIGKILLed again and again while a campaign runs and research keeps arriving.

The exactly-once promises, checked from the SQLite database afterwards: no slot ran twice,
none was skipped while the daemon was up, the slots missed while it was down became one
run, every research row was considered by exactly one run, and no insight went into two
videos. The daemon is `avatar-daemon run` with its clock sped up (tests/fast_clock_daemon.py),
so a campaign due every minute runs twice a second; research files are dropped into its
inbox all along, down times included. The kill moments are random: the seed is printed with
any failure (KILL_TEST_SEED=... replays it).
"""

import contextlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from avatar_daemon.campaigns.schema import Schedule
from tests.conftest import REPO

SPEED = 120  # a fake minute every half second of real time
START = "2026-11-24T08:00:00+00:00"
KILLS = 5
DROP_EVERY = 0.05  # seconds between research files


def token(n: int, letter: str) -> str:
    """Letters only, so the script writer keeps it as it is (numbers are spelt out)."""
    digits = ""
    while True:
        n, d = divmod(n, 26)
        digits += chr(97 + d)
        if not n:
            return letter + digits


def research(n: int) -> bytes:
    """One story of its own, and one shared with the files before and after (only one video may tell it)."""
    return json.dumps({"config": {"keywords": ["kill test"]}, "analysis": {"key_insights": [
        f"Own story tagged {token(n, 'u')}", f"Shared story tagged {token(n // 3, 's')}"]}}).encode()


class Dropper(threading.Thread):
    """Drops research files the careful way (a temporary name, then a rename), daemon up or down."""

    def __init__(self, inbox: Path):
        super().__init__(daemon=True)
        self.inbox, self.count, self.stop = inbox, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            tmp = self.inbox / f"r{self.count}.json.part"
            tmp.write_bytes(research(self.count))
            tmp.rename(self.inbox / f"r{self.count}.json")
            self.count += 1
            self.stop.wait(DROP_EVERY)


class Daemon:
    def __init__(self, config: Path, env: dict[str, str], log: list[str]):
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fast_clock_daemon", "--config", str(config)],
                                     cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.ready = threading.Event()
        threading.Thread(target=self._read, args=(log,), daemon=True).start()

    def _read(self, log):
        for line in self.proc.stderr:
            log.append(line.rstrip())
            if "avatar-daemon running" in line:
                self.ready.set()


def query(db: Path, sql: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as con:
        return con.execute(sql).fetchall()


def considered_ids(db: Path) -> list[int]:
    rows = query(db, "SELECT considered FROM campaign_runs")
    return [c["research_id"] for (text,) in rows for c in json.loads(text) if c["research_id"] is not None]


@pytest.mark.timeout(240)  # a hang guard: on a loaded machine each start takes seconds
def test_a_daemon_killed_during_runs_keeps_every_exactly_once_promise(tmp_path):
    seed = int(os.environ.get("KILL_TEST_SEED", time.time_ns() % 10**6))
    rng = random.Random(seed)
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({
        "data_dir": "var", "database": "var/db.sqlite3", "inbox": {"path": "inbox", "settle_seconds": 0.05},
        "jobs": {"output_dir": "var/videos"}, "http": {"enabled": False}, "default_renderer": "fake",
        "notifiers": ["log"], "campaigns_dir": "campaigns",
        "plugins": {"only": ["research_job", "template_writer", "formats", "log_notifier"]}}))
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns/kill.yaml").write_text(json.dumps({
        "name": "kill", "sources": [{"source": "research_job"}], "schedule": {"cron": "* * * * *"},
        "max_videos_per_day": 1_000_000, "quality": {"min_insights": 1}, "formats": ["tiktok"]}))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    db = tmp_path / "var/db.sqlite3"
    env = {**os.environ, "FAST_CLOCK_START": START, "FAST_CLOCK_ORIGIN": repr(time.time()),
           "FAST_CLOCK_SPEED": str(SPEED)}
    log: list[str] = []
    context = f"KILL_TEST_SEED={seed}"

    dropper = Dropper(inbox)
    dropper.start()
    daemons: list[Daemon] = []
    try:
        for _ in range(KILLS):
            daemon = Daemon(config, env, log)
            daemons.append(daemon)
            assert daemon.ready.wait(60), f"{context}: the daemon did not start:\n" + "\n".join(log[-30:])
            time.sleep(rng.uniform(0.0, 2.0))  # a random moment: the catch-up at start, a run, between runs
            daemon.proc.kill()
            daemon.proc.wait()
            time.sleep(rng.uniform(1.0, 1.5))  # down for two fake minutes or more: slots are missed
        daemon = Daemon(config, env, log)
        daemons.append(daemon)
        assert daemon.ready.wait(60), f"{context}: the daemon did not start:\n" + "\n".join(log[-30:])
        # Research keeps coming until the schedule has gone on past the restarts: a loaded machine may
        # kill every earlier life before its first run, and a run needs new research to be made.
        deadline = time.monotonic() + 60
        while len(query(db, "SELECT id FROM campaign_runs")) <= KILLS:
            assert time.monotonic() < deadline, f"{context}: the campaign stopped running:\n" + "\n".join(log[-30:])
            time.sleep(0.1)
        dropper.stop.set()
        dropper.join()
        deadline = time.monotonic() + 60
        while True:  # until the last files are ingested and a run has looked at them
            ingested = {r[0] for r in query(db, "SELECT id FROM research_jobs WHERE campaign_id IS NULL")}
            if len(ingested) == dropper.count and ingested <= set(considered_ids(db)):
                break
            assert time.monotonic() < deadline, (
                f"{context}: of {dropper.count} files, {len(ingested)} ingested; never considered: "
                f"{sorted(ingested - set(considered_ids(db)))}")
            time.sleep(0.1)
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(timeout=30) == 0, context
    finally:
        dropper.stop.set()
        for started in daemons:
            started.proc.kill()  # nothing, unless a check above failed with it running

    assert not any("Traceback" in line for line in log), f"{context}:\n" + "\n".join(log)
    runs = query(db, "SELECT slot, trigger, at, chosen FROM campaign_runs ORDER BY id")
    assert {trigger for _, trigger, _, _ in runs} <= {"schedule", "catch-up"}, context
    # Each run answers the first slot after the previous run: none twice, none skipped while up.
    schedule = Schedule(cron="* * * * *")
    slots = [datetime.fromisoformat(slot) for slot, _, _, _ in runs]
    times = [datetime.fromisoformat(at) for _, _, at, _ in runs]
    for i in range(1, len(runs)):
        assert slots[i] == schedule.next_after(times[i - 1]), f"{context}: run {i} answered {slots[i]}, " \
            f"but the run before ran at {times[i - 1]}"
    # The slots missed while the daemon was down became one run each time it came back.
    collapsed = [i for i in range(len(runs)) if schedule.next_after(slots[i]) <= times[i]]
    assert collapsed and len(runs) > KILLS, f"{context}: {len(runs)} runs, {len(collapsed)} after a down time"
    # Every research row was considered by exactly one run.
    counts = Counter(considered_ids(db))
    assert set(counts) == ingested and set(counts.values()) == {1}, \
        f"{context}: considered twice: {[i for i, n in counts.items() if n > 1]}"
    assert len(list((inbox / "done").iterdir())) == dropper.count, f"{context}: a dropped file went missing"
    # No story went into two of the campaign's videos.
    scripts = [json.loads(r[0])["script"]["text"] for r in
               query(db, "SELECT request FROM video_generations WHERE campaign_id IS NOT NULL")]
    told = Counter(t for text in scripts for t in re.findall(r"tagged ([a-z]+)", text))
    assert max(told.values()) == 1, f"{context}: told twice: {[t for t, n in told.items() if n > 1]}"
    # ... and each was told: every research became a video, a shared story in the first of its files.
    assert sum(t.startswith("u") for t in told) == dropper.count, context
    assert sum(t.startswith("s") for t in told) == len({n // 3 for n in range(dropper.count)}), context
