"""Waiting for HeyGen: the webhook first, polling as the safety net, timed by what HeyGen usually takes."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from avatar_daemon import Progress, RenderError

from .answers import Video
from .plan import Plan
from .settings import HeyGenSettings

if TYPE_CHECKING:
    from .client import HeyGenClient


class Waiting:
    """One waiter per video; a verified webhook wakes it, a poll checks on it when none comes."""

    def __init__(self, cfg: HeyGenSettings):
        self.cfg = cfg
        self.render_ratio = cfg.render_ratio  # seconds of rendering per spoken second, learnt as we go
        self._waiters: dict[str, asyncio.Event] = {}
        self._early: dict[str, float] = {}   # webhooks for videos whose create answer we have not seen yet

    def delivered(self, video_id: str) -> None:
        """A verified webhook names a video: wake its waiter, or remember it for one about to start."""
        event = self._waiters.get(video_id)
        if event is not None:
            event.set()
        else:
            self._early[video_id] = time.monotonic()
            for stale in [k for k, at in self._early.items() if time.monotonic() - at > 3600]:
                del self._early[stale]

    async def wait(self, client: "HeyGenClient", video_id: str, plan: Plan, progress: Progress, *, started: float,
                   deadline: float, parts: int, submitted_at: float | None, webhook: bool) -> Video:
        """The finished video, RenderError if HeyGen failed it, TimeoutError at the deadline.

        ``webhook`` says a registered endpoint will tell us: then polls are only a safety net.
        """
        c = self.cfg
        spoken = plan.estimated_seconds / max(1, parts)
        expected = max(c.poll_first_seconds, self.render_ratio * spoken)
        grace = c.webhook_grace if webhook else 1.0
        # Polling alone: look a little before the expected time, so a quick render is not kept waiting.
        first = expected * (grace if webhook else 0.8)
        interval = max(expected * grace / 4, 1e-3)
        next_poll = started + first
        wake = self._waiters.setdefault(video_id, asyncio.Event())
        if self._early.pop(video_id, None) is not None:
            wake.set()
        try:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    raise TimeoutError(f"HeyGen did not finish video {video_id} within {c.deadline_seconds:g} s "
                                       "(heygen.deadline_seconds)")
                wake_at = min(next_poll, deadline, now + c.progress_tick_seconds)
                try:
                    async with asyncio.timeout(max(0.0, wake_at - now)):
                        await wake.wait()
                except TimeoutError:
                    pass
                now = time.monotonic()
                if not wake.is_set() and now < next_poll:
                    # no call: an estimate from the time HeyGen usually takes
                    progress(min(90.0, 5 + 85 * (now - started) / expected), "rendering at HeyGen")
                    continue
                wake.clear()
                video = await client.get_video(video_id)
                if video.status == "completed":
                    finished = _number((video.model_extra or {}).get("completed_at"))
                    if submitted_at and finished and finished > submitted_at:
                        self._learn(finished - submitted_at, spoken)  # HeyGen's own time, not our polling lag
                    elif submitted_at:
                        self._learn(time.monotonic() - started, spoken)
                    return video
                if video.status == "failed":
                    raise RenderError(video.failure())
                percent = video.progress if video.progress is not None else 5 + 85 * (now - started) / expected
                progress(min(95.0, percent), f"HeyGen: {video.status}")
                next_poll = time.monotonic() + interval
                interval = min(interval * c.poll_factor, c.poll_max_interval_seconds)
        finally:
            self._waiters.pop(video_id, None)

    def _learn(self, elapsed: float, spoken: float) -> None:
        """Move the expected render time towards what HeyGen really took, so the first poll lands on time.

        Measured against our own estimate of the spoken seconds, the same figure the next
        prediction starts from, so an estimate that is off by a constant factor cancels out.
        """
        observed = elapsed / max(spoken, 1.0)
        self.render_ratio = max(0.01, 0.7 * self.render_ratio + 0.3 * observed)


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
