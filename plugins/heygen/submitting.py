"""Submitting a job's videos once: resumed from saved ids, remade when HeyGen failed them, found after a crash."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from avatar_daemon import Progress, RenderError, RenderRequest

from .answers import HeyGenError, VideoCreated
from .plan import Plan
from .render_slots import FINISHED

if TYPE_CHECKING:
    from .client import HeyGenClient
    from .spending import CostGuard

log = logging.getLogger(__name__)

Schedule = Callable[[float], float]


async def submit(client: "HeyGenClient", store: Any, guard: "CostGuard", request: RenderRequest, plan: Plan,
                 progress: Progress, schedule: Schedule) -> tuple[list[str], float | None]:
    """(HeyGen video ids, wall-clock time of submission or None for a resumed job).

    `schedule(waited)`: seconds from now to the next look at a part `waited` seconds after its
    create, the waiting schedule, used for the job's own parts while a later one waits for a render."""
    # One slot per part, in order; an empty slot is a part not created yet (or dropped below).
    saved = request.external_id.split(",") if request.external_id else []
    slots: list[str | None] = [i or None for i in saved] + [None] * (len(plan.parts) - len(saved))
    if request.retry:
        await _drop_failed(client, request, slots)
    submitted_at = None  # wall clock, to learn from HeyGen's completed_at; unknown for a resumed job
    missing = [i for i, video_id in enumerate(slots) if video_id is None]
    if missing:
        submitted_at = time.time()
        if len(missing) == len(plan.parts):
            await guard.check(request, plan)
        # v2 creates (Studio, templates) have no idempotency key: after a crash mid-create within
        # this try, look for the video by its callback id before paying for a second one.
        again = plan.api != "v3" and await _submitted_before(store, request.job_id)
        await progress.submitting(f"submitting to HeyGen ({len(missing)} video(s))")
        own = OwnParts(client, schedule, [v for v in slots if v])
        for i in missing:
            part = plan.parts[i]

            async def save(created: VideoCreated, i: int = i) -> None:
                slots[i] = created.video_id
                await progress.submitted(",".join(v or "" for v in slots))  # before anything else can go wrong
                own.made(created.video_id)

            found = await _find_by_callback(client, part.key) if again else None
            if found:
                await save(found)
            elif part.path == "/v3/videos":
                await client.create_video(part.body, part.key, save, own.look if client.renders else None)
            elif plan.api == "template":
                await client.generate_from_template(part.path.split("/")[3], part.body, save)
            else:
                await client.studio_generate(part.body, save)
        log.info("heygen: job %s submitted as %s", request.job_id, ", ".join(v or "" for v in slots))
    else:
        progress(1, "waiting for HeyGen (resumed)")
    return [v for v in slots if v], submitted_at


class OwnParts:
    """The job's parts made so far, looked at on the waiting schedule while a later part waits for a
    free render: the job is still submitting, so no scheduled check sees them finish, and with more
    parts than the cap it would otherwise wait for renders only its own parts hold."""

    def __init__(self, client: "HeyGenClient", schedule: Schedule, resumed: list[str]):
        self.client = client
        self.schedule = schedule
        self.since: dict[str, float] = {}   # video id -> when it was made (monotonic)
        self.due: dict[str, float] = {}     # video id -> when to look at it next
        now = time.monotonic()
        for video_id in resumed:  # made by an earlier try: it may have finished meanwhile, so look at once
            self.since[video_id] = self.due[video_id] = now

    def made(self, video_id: str) -> None:
        now = time.monotonic()
        self.since[video_id] = now
        self.due[video_id] = now + self.schedule(0.0)

    async def look(self) -> float | None:
        """Look at the parts that are due and still counted; seconds until the next is due, None when
        none is counted (a finish seen here frees its render in the count)."""
        renders = self.client.renders
        for video_id, due in list(self.due.items()):
            if renders is None or not renders.counts(video_id):
                del self.due[video_id]
            elif due <= time.monotonic():
                video = await self.client.get_video(video_id)  # a finish frees its render (RenderSlots.seen)
                if video.status == "failed":  # no use making the rest: the job fails with HeyGen's reason
                    raise RenderError(video.failure())
                if video.status in FINISHED:  # its render is free: nothing more to see until the job waits
                    del self.due[video_id]
                    continue
                now = time.monotonic()
                self.due[video_id] = now + self.schedule(now - self.since[video_id])
        counted = [due for video_id, due in self.due.items() if renders is not None and renders.counts(video_id)]
        return max(0.0, min(counted) - time.monotonic()) if counted else None


async def _drop_failed(client: "HeyGenClient", request: RenderRequest, slots: list[str | None]) -> None:
    """On a person's retry, a saved video HeyGen failed (or no longer has) is made again; any other is resumed.

    The new create carries this retry's idempotency key: the first try's key would only
    be answered with the video that failed.
    """
    for i, video_id in enumerate(slots):
        if video_id is None:
            continue
        try:
            video = await client.get_video(video_id)
        except HeyGenError as exc:
            if exc.status != 404:
                raise
            reason = "HeyGen no longer has it"
        else:
            if video.status != "failed":
                continue
            reason = video.failure()
        log.info("heygen: job %s retry %d: video %s is made again (%s)", request.job_id, request.retry,
                 video_id, reason)
        slots[i] = None


async def _submitted_before(store: Any, job_id: int) -> bool:
    """Whether this try already reached the create call (a `submitting` event since the last retry)."""
    submitting = False
    for event in await store.events(job_id):
        if event.data.get("retry"):
            submitting = False
        elif event.state.value == "submitting":
            submitting = True
    return submitting


async def _find_by_callback(client: "HeyGenClient", callback_id: str) -> VideoCreated | None:
    """The newest page of HeyGen's video list, searched for our callback id."""
    seen = 0
    async for item in client.list_videos(limit=100):
        if item.get("callback_id") == callback_id:
            log.info("heygen: found video %s made before the crash; not creating another",
                     item.get("id") or item.get("video_id"))
            return VideoCreated(video_id=item.get("id") or item["video_id"], status=item.get("status"))
        seen += 1
        if seen >= 100:
            return None
    return None
