"""The cost guard: a paid render is refused before anything is spent, on our limits and HeyGen's credits."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from avatar_daemon import RenderError, RenderRequest

from .answers import Quota
from .plan import Plan
from .settings import HeyGenSettings

if TYPE_CHECKING:
    from .client import HeyGenClient

RENDERER = "heygen"  # the name usage is counted under


class CostGuard:
    def __init__(self, daemon: Any, cfg: HeyGenSettings, client: Callable[[], "HeyGenClient"]):
        self.daemon = daemon
        self.cfg = cfg
        self._client = client
        self._quota: tuple[float, Quota] | None = None
        self._lock = asyncio.Lock()

    async def check(self, request: RenderRequest, plan: Plan) -> None:
        """Refuse before spending: daily and per-campaign limits, then HeyGen's own remaining credits."""
        if self.cfg.test_mode and plan.api != "v3":
            return  # Studio and template test renders are free
        async with self._lock:  # check and count as one step, or ten jobs all pass a limit of one
            await self._check_and_count(request, plan)

    async def _check_and_count(self, request: RenderRequest, plan: Plan) -> None:
        store, c, seconds = self.daemon.store, self.cfg, plan.estimated_seconds
        day = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
        checks = [("per day", None, c.max_renders_per_day, c.max_seconds_per_day)]
        if request.campaign_id is not None:
            checks.append(("for this campaign per day", request.campaign_id, c.max_renders_per_campaign_per_day,
                           c.max_seconds_per_campaign_per_day))
        for label, campaign, max_renders, max_seconds in checks:
            if max_renders is None and max_seconds is None:
                continue
            renders, used = await store.usage(RENDERER, day, campaign, exclude_job=request.job_id)
            if max_renders is not None and renders + 1 > max_renders:
                raise RenderError(f"HeyGen limit reached: {renders} of {max_renders} renders {label} already used "
                                  "(heygen.max_renders_*); the video was not submitted")
            if max_seconds is not None and used + seconds > max_seconds:
                raise RenderError(f"HeyGen limit reached: this {seconds:.0f} s video would take {label} use to "
                                  f"{used + seconds:.0f} s of {max_seconds:g} s (heygen.max_seconds_*); "
                                  "the video was not submitted")
        need = math.ceil(seconds / 30) * 1.0  # 2 credits a minute, charged by the half minute
        if c.check_quota:
            quota = await self._remaining()
            if quota.credits < need:
                raise RenderError(f"HeyGen has {quota.credits:.1f} credits left and this {seconds:.0f} s video needs "
                                  f"about {need:.0f}; the video was not submitted")
            quota.remaining_quota -= need * 60
        await store.record_usage(request.job_id, RENDERER, seconds, request.campaign_id)

    async def _remaining(self) -> Quota:
        now = time.monotonic()
        if self._quota is None or now - self._quota[0] > self.cfg.quota_cache_seconds:
            self._quota = (now, await self._client().quota())
        return self._quota[1]
