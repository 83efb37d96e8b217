"""The job runner: claims queued jobs with bounded concurrency per renderer and runs them.

A renderer that `WaitsRemotely` (HeyGen) gives its slot back once its job is submitted: the
job waits in `waiting_remote`, and when its check falls due any node claims it, asks the
renderer once, and completes it, fails it or puts it back for the next check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from .access import Caller
from .catalogue import Catalogue
from .coalescing import Coalescer
from .errors import AvatarDaemonError, UnknownNameError
from .events import EventBus
from .hookspecs import HasOwnTimeout, WaitsRemotely
from .media import MediaResolver
from .models import JobEvent, JobState, RemoteWait, RenderRequest, RenderResult, Script
from .planning import request_for
from .store import Job, ResearchJob, Store, while_busy

log = logging.getLogger(__name__)

PROGRESS_MIN_INTERVAL = 0.25  # seconds between a job's progress reports (see coalescing.py)
RETRYABLE = tuple(s for s in JobState if s.final and s is not JobState.completed)  # ended, but not well


class NotRetryable(AvatarDaemonError):
    """The job has not ended, or ended well: there is nothing to retry (HTTP answers 409)."""


class Queued(Protocol):
    """JobRunner.queued: how every interface that stored new jobs gets them heard of and started."""

    def __call__(self, job_ids: list[int], **data: Any) -> None: ...


class JobRunner:
    name = "jobs"

    def __init__(self, catalogue: Catalogue, media: MediaResolver, store: Store, bus: EventBus, *,
                 node_id: str, lease_seconds: float):
        self.catalogue = catalogue
        self.media = media
        self.store = store
        self.bus = bus
        self.node = node_id  # this daemon's claims, among several sharing the store
        self.lease = lease_seconds
        self.wake = asyncio.Event()
        self.running: dict[int, asyncio.Task] = {}
        self._slots: dict[str, int] = {}
        self._checks: dict[str, int] = {}  # remote waits being checked, per renderer: not slots

    def queued(self, job_ids: list[int], **data: Any) -> None:
        """Announce jobs just stored as queued (with `data`) and wake the runner: the one way to queue."""
        for job_id in job_ids:
            self.bus.announce(JobEvent(job_id=job_id, state=JobState.queued, percent=0, message="queued", data=data))
        if job_ids:
            self.wake.set()

    async def run(self) -> None:
        store = self.store
        # Only this node's own: jobs other nodes run are theirs until their leases run out.
        requeued = await while_busy(lambda: store.requeue_interrupted(self.node), "requeueing interrupted jobs")
        if requeued:
            log.info("requeued %d job(s) interrupted by the last shutdown: %s", len(requeued), requeued)
        try:
            while True:
                self.wake.clear()
                await self._fill()
                # asyncio.timeout, not wait_for: 3.11's wait_for swallows a cancel that lands as the
                # event fires, and the runner then never stopped (a shutdown hang seen in CI).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(await self._until_next_check(5.0)):
                        await self.wake.wait()
        finally:
            for task in self.running.values():
                task.cancel()
            if self.running:
                await asyncio.wait(list(self.running.values()), timeout=10)

    async def _fill(self) -> None:
        """Claim work only for renderers with a free slot: a busy runner costs no query per wake."""
        for renderer in self.catalogue.renderers:
            name = renderer.name
            limit = max(1, renderer.max_concurrency)
            while self._slots.get(name, 0) < limit:
                job = await while_busy(lambda: self.store.claim_next(name, self.node, self.lease),
                                       f"claiming a {name} job")
                if job is None:
                    break
                self._start(job, self._slots)
            # Checks are short (one status call, or a download) and bounded apart from the slots.
            while isinstance(renderer, WaitsRemotely) and self._checks.get(name, 0) < limit:
                job = await while_busy(lambda: self.store.claim_check(name, self.node, self.lease),
                                       f"claiming a {name} check")
                if job is None:
                    break
                if job.id not in self.running:  # else: this node's earlier check of it, back from a long stall
                    self._start(job, self._checks)

    async def _until_next_check(self, cap: float) -> float:
        """Seconds until a waiting job's check falls due (on any node's schedule), at most `cap`.

        One already due is one this node could not take (its checks are all busy, or another node
        is taking it): a finished check wakes the runner, so a short floor only keeps it from spinning.
        """
        names = [r.name for r in self.catalogue.renderers if isinstance(r, WaitsRemotely)]
        due = await while_busy(lambda: self.store.next_check(names), "reading the next check") if names else None
        if due is None:
            return cap
        return min(cap, max(0.25, (due - self.store.clock()).total_seconds() + 0.01))

    def _start(self, job: Job, counts: dict[str, int]) -> None:
        counts[job.renderer] = counts.get(job.renderer, 0) + 1
        task = asyncio.create_task(self._turn(job), name=f"job-{job.id}")
        self.running[job.id] = task

        def done(_: asyncio.Task) -> None:
            self.running.pop(job.id, None)
            counts[job.renderer] -= 1
            self.wake.set()

        task.add_done_callback(done)

    async def check_remote_now(self, renderer: str, remote_id: str) -> list[int]:
        """A webhook said a remote render changed: its job is checked at once, by whichever node claims it."""
        job_ids = await while_busy(lambda: self.store.check_remote_now(renderer, remote_id),
                                   f"marking {renderer} {remote_id} due")
        if job_ids:
            self.wake.set()
        return job_ids

    async def cancel(self, job_id: int) -> bool:
        """Cancel a queued or running job; False when it had already ended."""
        job = await self.store.job(job_id)
        if job is None or job.status.final:
            return False
        task = self.running.get(job_id)
        if task:
            task.cancel()
            await asyncio.wait([task], timeout=10)
        await self.bus.publish(JobEvent(job_id=job_id, state=JobState.cancelled, message="cancelled"))
        return True

    async def retry(self, job_id: int, who: Caller | None = None) -> Job:
        """Queue a failed, timed-out or cancelled job again as a new try; the one path for every interface.

        `who` is the person asking (HTTP, Slack): they must be allowed to see the job. None is
        the command line, which is trusted. The job keeps its id, settings and any remote id.
        """
        store = self.store
        job = await store.job(job_id)
        if job is None:
            raise UnknownNameError(f"no video {job_id}")
        if who is not None and not who.may_see(job):
            raise PermissionError(f"video {job_id} belongs to another workspace; {who.name} may retry only "
                                  f"{who.workspace}'s videos")
        if job.status not in RETRYABLE:
            raise NotRetryable(_not_retryable(job))
        try:
            self.catalogue.renderers[job.renderer]
        except UnknownNameError as exc:
            raise NotRetryable(f"video {job_id} was made with a renderer that is not loaded: {exc}") from None
        done = await store.requeue_ended(job_id, [s.value for s in RETRYABLE], who.name if who else "command line")
        if done is None:  # it changed under us: another caller retried it first
            raise NotRetryable(_not_retryable(await store.job(job_id)))
        job, event = done
        log.info("job %s: %s", job_id, event.message)
        self.bus.announce(event)
        self.wake.set()
        return job

    async def script_for(self, job: Job, research: ResearchJob | None = None) -> Script | None:
        """The job's own script (a campaign's or a re-told research's), else its research's."""
        if job.request.get("script") is not None:
            return Script.model_validate(job.request["script"])
        if research is None and job.research_job_id:
            research = await self.store.research_job(job.research_job_id)
        return research.script if research else None

    async def build_request(self, job: Job) -> RenderRequest:
        research = await self.store.research_job(job.research_job_id) if job.research_job_id else None
        settings = {k: v for k, v in job.request.items() if k != "script"}
        request = request_for(self.catalogue, self.media, job.id, await self.script_for(job, research), job.avatar_id, job.format,
                                   job.template_id, settings, job.external_id, job.campaign_id,
                                   research.research if research else None)
        request.retry = await self.store.retries(job.id)
        return request

    async def execute(self, job: Job) -> RenderResult | None:
        """Run a job claimed by this node to its end, here: a remote renderer's wait is sat out in this
        task (the command line's `render`). The runner itself lets remote waits go (see `_turn`)."""
        return await self._claimed(job, whole=True)

    async def _turn(self, job: Job) -> RenderResult | None:
        """The runner's part of a job: all of it, or a remote renderer's submit, or one check of its wait."""
        return await self._claimed(job, whole=False)

    async def _claimed(self, job: Job, whole: bool) -> RenderResult | None:
        """Work on a job claimed by this node; every write is fenced by the claim (node, attempt).

        When a write is refused (the lease ran out and another node took the job, or someone
        ended it), the render stops at once: its result would not be this node's to record.
        """
        bus = PatientBus(self.bus, (self.node, job.attempts), asyncio.current_task())
        waiting = job.status is JobState.waiting_remote
        progress = JobProgress(job.id, bus, JobState.waiting_remote if waiting else JobState.rendering)
        try:
            return await self._execute(job, progress, bus, whole)
        except LostClaim as exc:
            log.warning("job %s: %s; this node stops rendering it", job.id, exc)
            return None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if bus.lost and task is not None and task.uncancel() == 0:  # our own cancel, not a shutdown's
                log.warning("job %s: this node's claim on it is gone; its render was stopped", job.id)
                return None
            raise
        finally:
            progress.close()  # a render thread still winding down must not publish after the job ended

    async def _execute(self, job: Job, progress: "JobProgress", bus: "PatientBus", whole: bool,
                       ) -> RenderResult | None:
        start = time.monotonic()
        waited = 0.0  # seconds since the remote submit, for a check
        try:
            renderer = self.catalogue.renderers[job.renderer]
            request = await while_busy(lambda: self.build_request(job), f"job {job.id}")
            # A remote renderer that waits for hours on a queue sets its own, longer deadline.
            limit = renderer.timeout_seconds if isinstance(renderer, HasOwnTimeout) else self.catalogue.settings.jobs.timeout_seconds
            if job.status is JobState.waiting_remote:
                since = datetime.fromisoformat(job.remote_since) if job.remote_since else self.store.clock()
                waited = max(0.0, (self.store.clock() - since).total_seconds())
                if waited >= limit:
                    raise TimeoutError(f"the remote render took longer than {limit:g} s from its submit")
                async with asyncio.timeout(limit - waited):
                    result = await renderer.check(request, progress, waited)
            else:
                await bus.publish(JobEvent(job_id=job.id, state=JobState.rendering, percent=0,
                                           message=f"rendering with {renderer.name}"))
                remote = not whole and isinstance(renderer, WaitsRemotely)
                async with asyncio.timeout(limit):
                    work = renderer.submit if remote else renderer.render
                    result = await work(request, progress)
        except TimeoutError as exc:
            await bus.publish(JobEvent(job_id=job.id, state=JobState.timeout,
                                       message=str(exc) or f"render took longer than {limit:g} s"))
            return None
        except (asyncio.CancelledError, LostClaim):
            raise  # a user cancel publishes its own event; a shutdown leaves the job to be resumed
        except AvatarDaemonError as exc:
            await bus.publish(JobEvent(job_id=job.id, state=JobState.failed, message=str(exc)))
            return None
        except Exception as exc:
            log.error("job %s crashed: %s", job.id, traceback.format_exc())
            await bus.publish(JobEvent(job_id=job.id, state=JobState.failed,
                                       message=f"internal error: {type(exc).__name__}: {exc}"))
            return None
        await progress.flush()  # progress still in flight must land before the final state
        progress.close()
        if isinstance(result, RemoteWait):
            await self._wait_remote(job, result, bus, limit - waited - (time.monotonic() - start))
            return None
        data = result.model_dump(mode="json", exclude_none=True)
        data["render_seconds"] = round(waited + time.monotonic() - start, 2)
        await bus.publish(JobEvent(job_id=job.id, state=JobState.completed, percent=100, message="done",
                                   data=data), result=data)
        return result

    async def _wait_remote(self, job: Job, wait: RemoteWait, bus: "PatientBus", left: float) -> None:
        """Give the job back to wait for its remote render: no slot, no node, checked again by any node.

        Never later than its deadline, so a render that never finishes times out on time.
        """
        check_in = max(0.0, min(wait.check_in, left))
        at = (self.store.clock() + timedelta(seconds=check_in)).astimezone(timezone.utc)  # as the store compares
        await bus.publish(JobEvent(job_id=job.id, state=JobState.waiting_remote, percent=wait.percent,
                                   message=wait.message or f"waiting for {job.renderer}",
                                   data={"next_check_at": at.isoformat()}))


def _not_retryable(job: Job) -> str:
    if job.status is JobState.completed:
        return f"video {job.id} completed; there is nothing to retry"
    return (f"video {job.id} is {job.status.value}, not ended; only a failed, timed-out or cancelled video "
            "can be retried")


class LostClaim(AvatarDaemonError):
    """This node's claim on a job is gone: its lease ran out and another node took it, or it was ended."""



class PatientBus:
    """The bus for one claim: each publish fenced by it, and waiting out a busy database.

    A job never fails because the database was locked. A refused write cancels `task` (the
    job's own), so a render that is no longer this node's stops instead of running on.
    """

    def __init__(self, bus: EventBus, fence: tuple[str, int], task: asyncio.Task | None = None):
        self.bus, self.fence, self.task = bus, fence, task
        self.lost = False

    async def publish(self, event: JobEvent, result: dict[str, Any] | None = None) -> None:
        if self.lost:
            raise LostClaim(_lost(event, self.fence))
        written = await while_busy(lambda: self.bus.publish(event, result, fence=self.fence),
                                   f"job {event.job_id} ({event.state.value})")
        if not written:
            self.lost = True
            if self.task is not None and self.task is not asyncio.current_task() and not self.task.done():
                self.task.cancel(_lost(event, self.fence))
            raise LostClaim(_lost(event, self.fence))


def _lost(event: JobEvent, fence: tuple[str, int]) -> str:
    node, attempt = fence
    return (f"the store refused its {event.state.value} event: try {attempt} is no longer node {node}'s "
            "(its lease ran out and another node took the job, or the job was ended)")


class JobProgress:
    """The `Progress` a renderer gets: coalesced percent reports plus the crash-safety checkpoints."""

    def __init__(self, job_id: int, bus: PatientBus, state: JobState = JobState.rendering):
        self.job_id = job_id
        self.bus = bus
        self.state = state  # what progress reports say: rendering, or waiting_remote during a check
        self.loop = asyncio.get_running_loop()
        self.pending: list[asyncio.Future] = []
        self._reports = Coalescer(PROGRESS_MIN_INTERVAL)
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def __call__(self, percent: float, message: str) -> None:
        """Thread-safe and coalesced: a fast renderer must not flood the store or Slack."""
        if self.closed:
            return
        if not self._reports.due(percent):
            return
        event = JobEvent(job_id=self.job_id, state=self.state, percent=round(min(percent, 99.9), 1),
                         message=message)
        self.loop.call_soon_threadsafe(self._publish, event)

    def _publish(self, event: JobEvent) -> None:
        if not self.closed:
            self.pending.append(asyncio.ensure_future(self._report(event)))

    async def _report(self, event: JobEvent) -> None:
        with contextlib.suppress(LostClaim):  # the bus has stopped the job already
            await self.bus.publish(event)

    async def submitting(self, message: str) -> None:
        await self.flush()
        await self.bus.publish(JobEvent(job_id=self.job_id, state=JobState.submitting, message=message))

    async def submitted(self, external_id: str, **data: Any) -> None:
        await self.flush()
        await self.bus.publish(JobEvent(job_id=self.job_id, state=JobState.rendering, message="submitted",
                                        data={"external_id": external_id, **data}))

    async def flush(self) -> None:
        if self.pending:
            pending, self.pending = self.pending, []
            await asyncio.gather(*pending, return_exceptions=True)
