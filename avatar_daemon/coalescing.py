"""Which progress reports are worth passing on: a fast renderer or upload must not flood Slack or the store.

A report goes out when the percent moved at least a point and some time has passed since the
last one, or, whatever the percent, every few seconds (so a long step still shows it is alive).
Jobs and publications both report through one of these.
"""

from __future__ import annotations

import time

MIN_STEP = 1.0    # percent
HEARTBEAT = 5.0   # seconds: a report even when nothing moved


class Coalescer:
    def __init__(self, min_interval: float):
        self.min_interval = min_interval
        self._percent, self._at = -100.0, 0.0

    def due(self, percent: float) -> bool:
        """True (and remembered as sent) when a report of `percent` should go out now."""
        now = time.monotonic()
        moved = percent - self._percent >= MIN_STEP and now - self._at >= self.min_interval
        if not moved and now - self._at < HEARTBEAT:
            return False
        self._percent, self._at = percent, now
        return True
