"""`avatar-daemon run` with the clock sped up, for tests that kill a real daemon process.

A campaign due every minute would make such a test take an hour; the daemon's one
injected clock (store stamps and scheduler alike) instead runs FAST_CLOCK_SPEED times
faster than the wall clock, from FAST_CLOCK_START (fake, ISO) at FAST_CLOCK_ORIGIN (real,
epoch seconds). Every restart reads the same three values, so fake time keeps going
forward across kills as real time does. Otherwise this is the `run` command: the same
settings, plugins, services and shutdown, plus the test renderer (`fake`).

    python -m tests.fast_clock_daemon --config daemon.yaml
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

from avatar_daemon.daemon import Daemon
from avatar_daemon.logs import setup_logging
from avatar_daemon.settings import load_settings
from avatar_daemon.testing import RecordingPlugin


def fast_clock(start: datetime, origin: float, speed: float):
    def now() -> datetime:
        return start + timedelta(seconds=(time.time() - origin) * speed)
    return now


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    settings = load_settings(Path(args.config))
    setup_logging(settings.log_level)
    clock = fast_clock(datetime.fromisoformat(os.environ["FAST_CLOCK_START"]),
                       float(os.environ["FAST_CLOCK_ORIGIN"]), float(os.environ["FAST_CLOCK_SPEED"]))
    asyncio.run(Daemon(settings, extra_plugins=(RecordingPlugin(),), clock=clock).run())


if __name__ == "__main__":
    main()
