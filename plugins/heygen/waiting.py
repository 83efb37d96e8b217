"""Waiting for HeyGen: when to look at a render, and what one look says.

The job waits with no slot and no node (`waiting_remote`) between looks, so nothing but what
HeyGen usually takes is kept here: each look is timed from the submit, on a schedule any node
computes alike. With a registered webhook the schedule is only a safety net (a delivery makes
the check due at once); without one, the first look lands a little before the expected time.
"""

from __future__ import annotations

import math
import time
from typing import Any

from avatar_daemon import RemoteWait, RenderError

from .answers import Video
from .plan import Plan
from .settings import HeyGenSettings


class Waiting:
    def __init__(self, cfg: HeyGenSettings):
        self.cfg = cfg
        self.render_ratio = cfg.render_ratio  # seconds of rendering per spoken second, learnt as we go

    def expected(self, plan: Plan, parts: int) -> tuple[float, float]:
        """(spoken seconds of one part, seconds HeyGen should take to render it)."""
        spoken = plan.estimated_seconds / max(1, parts)
        return spoken, max(self.cfg.poll_first_seconds, self.render_ratio * spoken)

    def estimate(self, plan: Plan, parts: int, waited: float) -> float:
        """How far a render should be after `waited` seconds, from the time HeyGen usually takes."""
        return min(90.0, 5 + 85 * waited / self.expected(plan, parts)[1])

    def next_look(self, plan: Plan, parts: int, waited: float, webhook: bool) -> float:
        """Seconds from now to the next scheduled look, `waited` seconds after the submit.

        The first at the expected time (stretched by webhook_grace when a webhook will tell us,
        a little early when it will not), then backing off by poll_factor up to
        poll_max_interval_seconds; a look out of turn (a webhook's) does not move the schedule.
        """
        c = self.cfg
        _, expected = self.expected(plan, parts)
        grace = c.webhook_grace if webhook else 1.0
        at = expected * (grace if webhook else 0.8)
        step = max(expected * grace / 4, 1e-3)
        while at <= waited and step < c.poll_max_interval_seconds and c.poll_factor > 1.0:
            at += step
            step = min(step * c.poll_factor, c.poll_max_interval_seconds)
        if at <= waited:  # steps of one size from here on
            at += (math.floor((waited - at) / step) + 1) * step
        return at - waited

    def look(self, videos: list[Video], ids: list[str], plan: Plan, waited: float, webhook: bool,
             ) -> RemoteWait | None:
        """None when every part is completed (HeyGen's time learnt); RenderError when HeyGen failed
        one; else when to look again and how far it has got. `videos` are the parts looked at, in
        order, up to the first one not completed."""
        for video in videos:
            if video.status == "failed":
                raise RenderError(video.failure())
        pending = [v for v in videos if v.status != "completed"]
        spoken, _ = self.expected(plan, len(ids))
        if not pending and len(videos) == len(ids):
            self._learn(videos, waited, spoken)
            return None
        video = pending[0]
        done = len(videos) - 1
        percent = video.progress if video.progress is not None else self.estimate(plan, len(ids), waited)
        percent = (done * 100 + min(95.0, percent)) / len(ids)
        part = f" (part {done + 1} of {len(ids)})" if len(ids) > 1 else ""
        return RemoteWait(check_in=self.next_look(plan, len(ids), waited, webhook),
                          percent=round(min(95.0, percent), 1), message=f"HeyGen: {video.status}{part}")

    def _learn(self, videos: list[Video], waited: float, spoken: float) -> None:
        """Move the expected render time towards what HeyGen really took, so the first look lands on time.

        HeyGen's own time (completed_at) when it is plausible, not our looking lag. Measured against
        our own estimate of the spoken seconds, the same figure the next prediction starts from, so
        an estimate that is off by a constant factor cancels out.
        """
        submitted = time.time() - waited
        finished = max((_number((v.model_extra or {}).get("completed_at")) or 0.0) for v in videos)
        elapsed = finished - submitted if submitted < finished <= time.time() else waited
        observed = elapsed / max(spoken, 1.0)
        self.render_ratio = max(0.01, 0.7 * self.render_ratio + 0.3 * observed)


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
