"""The job runner: claims queued jobs with bounded concurrency per renderer and runs them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from typing import TYPE_CHECKING, Any

from .errors import AvatarDaemonError, UnknownNameError
from .hookspecs import HasOwnTimeout
from .models import CaptionLook, JobEvent, JobState, RenderRequest, RenderResult, Research, Script
from .store import Job, ResearchJob, while_busy

if TYPE_CHECKING:
    from .access import Caller
    from .daemon import Daemon
    from .events import EventBus

log = logging.getLogger(__name__)

PROGRESS_MIN_STEP = 1.0       # percent
PROGRESS_MIN_INTERVAL = 0.25  # seconds
RETRYABLE = (JobState.failed, JobState.timeout, JobState.cancelled)


class NotRetryable(AvatarDaemonError):
    """The job has not ended, or ended well: there is nothing to retry (HTTP answers 409)."""


class JobRunner:
    name = "jobs"

    def __init__(self, daemon: "Daemon"):
        self.daemon = daemon
        self.wake = asyncio.Event()
        self.running: dict[int, asyncio.Task] = {}
        self._slots: dict[str, int] = {}

    async def run(self, daemon: "Daemon" | None = None) -> None:
        store = self.daemon.store
        requeued = await while_busy(store.requeue_interrupted, "requeueing interrupted jobs")
        if requeued:
            log.info("requeued %d job(s) interrupted by the last shutdown: %s", len(requeued), requeued)
        try:
            while True:
                self.wake.clear()
                await self._fill()
                # asyncio.timeout, not wait_for: 3.11's wait_for swallows a cancel that lands as the
                # event fires, and the runner then never stopped (a shutdown hang seen in CI).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5.0):
                        await self.wake.wait()
        finally:
            for task in self.running.values():
                task.cancel()
            if self.running:
                await asyncio.wait(list(self.running.values()), timeout=10)

    async def _fill(self) -> None:
        """Claim work only for renderers with a free slot: a busy runner costs no query per wake."""
        for renderer in self.daemon.renderers:
            name = renderer.name
            while self._slots.get(name, 0) < max(1, renderer.max_concurrency):
                job = await while_busy(lambda: self.daemon.store.claim_next(name), f"claiming a {name} job")
                if job is None:
                    break
                self._start(job)

    def _start(self, job: Job) -> None:
        self._slots[job.renderer] = self._slots.get(job.renderer, 0) + 1
        task = asyncio.create_task(self.execute(job), name=f"job-{job.id}")
        self.running[job.id] = task

        def done(_: asyncio.Task) -> None:
            self.running.pop(job.id, None)
            self._slots[job.renderer] -= 1
            self.wake.set()

        task.add_done_callback(done)

    async def cancel(self, job_id: int) -> bool:
        """Cancel a queued or running job; False when it had already ended."""
        job = await self.daemon.store.job(job_id)
        if job is None or job.status.final:
            return False
        task = self.running.get(job_id)
        if task:
            task.cancel()
            await asyncio.wait([task], timeout=10)
        await self.daemon.bus.publish(JobEvent(job_id=job_id, state=JobState.cancelled, message="cancelled"))
        return True

    async def retry(self, job_id: int, who: "Caller | None" = None) -> Job:
        """Queue a failed, timed-out or cancelled job again as a new try; the one path for every interface.

        `who` is the person asking (HTTP, Slack): they must be allowed to see the job. None is
        the command line, which is trusted. The job keeps its id, settings and any remote id.
        """
        store = self.daemon.store
        job = await store.job(job_id)
        if job is None:
            raise UnknownNameError(f"no video {job_id}")
        if who is not None and not who.may_see(job):
            raise PermissionError(f"video {job_id} belongs to another workspace; {who.name} may retry only "
                                  f"{who.workspace}'s videos")
        if job.status not in RETRYABLE:
            raise NotRetryable(_not_retryable(job))
        if job.renderer not in self.daemon.renderers:
            raise NotRetryable(f"video {job_id} was made with renderer {job.renderer!r}, which is not loaded "
                               f"(known: {', '.join(self.daemon.renderers.names())})")
        done = await store.requeue_ended(job_id, [s.value for s in RETRYABLE], who.name if who else "command line")
        if done is None:  # it changed under us: another caller retried it first
            raise NotRetryable(_not_retryable(await store.job(job_id)))
        job, event = done
        log.info("job %s: %s", job_id, event.message)
        self.daemon.bus.announce(event)
        self.wake.set()
        return job

    async def script_for(self, job: Job, research: ResearchJob | None = None) -> Script | None:
        """The job's own script (a campaign's or a re-told research's), else its research's."""
        if job.request.get("script") is not None:
            return Script.model_validate(job.request["script"])
        if research is None and job.research_job_id:
            research = await self.daemon.store.research_job(job.research_job_id)
        return research.script if research else None

    async def build_request(self, job: Job) -> RenderRequest:
        research = await self.daemon.store.research_job(job.research_job_id) if job.research_job_id else None
        settings = {k: v for k, v in job.request.items() if k != "script"}
        request = self.request_for(job.id, await self.script_for(job, research), job.avatar_id, job.format,
                                   job.template_id, settings, job.external_id, job.campaign_id,
                                   research.research if research else None)
        request.retry = await self.daemon.store.retries(job.id)
        return request

    def request_for(self, job_id: int, script: Script, avatar_id: str, format_name: str, template_id: str | None,
                    settings: dict[str, Any], external_id: str | None = None,
                    campaign_id: int | None = None, research: Research | None = None) -> RenderRequest:
        """A job's settings over its template's over the format's: one rule for jobs and dry runs."""
        daemon = self.daemon
        fmt = daemon.formats[format_name]
        template = daemon.settings.templates.get(template_id or "")
        return RenderRequest(
            job_id=job_id,
            script=script,
            avatar=daemon.avatar(avatar_id),
            format=fmt,
            voice_speed=settings.get("voice_speed") or fmt.voice_speed,
            captions=settings.get("captions", template.captions if template else True),
            title_card=template.title_card if template else True,
            **daemon.media.for_render(settings, template),  # local files the core checked, never a URL
            output_dir=daemon.settings.jobs.output_dir / f"job-{job_id}",
            external_id=external_id,
            campaign_id=campaign_id,
            template_id=template_id,
            research=research,
            cards=settings.get("cards", template.cards if template else True),
            caption_look=CaptionLook.model_validate(settings.get("caption_look") or (
                template.caption_look.model_dump() if template else {})),
        )

    async def execute(self, job: Job) -> RenderResult | None:
        progress = JobProgress(job.id, self.daemon.bus)
        try:
            return await self._execute(job, progress)
        finally:
            progress.close()  # a render thread still winding down must not publish after the job ended

    async def _execute(self, job: Job, progress: "JobProgress") -> RenderResult | None:
        bus = PatientBus(self.daemon.bus)
        start = time.monotonic()
        try:
            renderer = self.daemon.renderers[job.renderer]
            request = await while_busy(lambda: self.build_request(job), f"job {job.id}")
            await bus.publish(JobEvent(job_id=job.id, state=JobState.rendering, percent=0,
                                       message=f"rendering with {renderer.name}"))
            # A remote renderer that waits for hours on a queue sets its own, longer deadline.
            limit = renderer.timeout_seconds if isinstance(renderer, HasOwnTimeout) else self.daemon.settings.jobs.timeout_seconds
            async with asyncio.timeout(limit):
                result = await renderer.render(request, progress)
        except TimeoutError as exc:
            await bus.publish(JobEvent(job_id=job.id, state=JobState.timeout,
                                       message=str(exc) or f"render took longer than {limit:g} s"))
            return None
        except asyncio.CancelledError:
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
        data = result.model_dump(mode="json", exclude_none=True)
        data["render_seconds"] = round(time.monotonic() - start, 2)
        await bus.publish(JobEvent(job_id=job.id, state=JobState.completed, percent=100, message="done",
                                   data=data), result=data)
        return result


def _not_retryable(job: Job) -> str:
    if job.status is JobState.completed:
        return f"video {job.id} completed; there is nothing to retry"
    return (f"video {job.id} is {job.status.value}, not ended; only a failed, timed-out or cancelled video "
            "can be retried")


class PatientBus:
    """The bus, with each publish waiting out a busy database: a job never fails because the database was locked."""

    def __init__(self, bus: "EventBus"):
        self.bus = bus

    async def publish(self, event: JobEvent, result: dict[str, Any] | None = None) -> None:
        await while_busy(lambda: self.bus.publish(event, result), f"job {event.job_id} ({event.state.value})")


class JobProgress:
    """The `Progress` a renderer gets: coalesced percent reports plus the crash-safety checkpoints."""

    def __init__(self, job_id: int, bus: "EventBus"):
        self.job_id = job_id
        self.bus = PatientBus(bus)
        self.loop = asyncio.get_running_loop()
        self.pending: list[asyncio.Future] = []
        self._percent = -100.0
        self._at = 0.0
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def __call__(self, percent: float, message: str) -> None:
        """Thread-safe and coalesced: a fast renderer must not flood the store or Slack."""
        if self.closed:
            return
        now = time.monotonic()
        moved = percent - self._percent >= PROGRESS_MIN_STEP and now - self._at >= PROGRESS_MIN_INTERVAL
        if not moved and now - self._at < 5:
            return
        self._percent, self._at = percent, now
        event = JobEvent(job_id=self.job_id, state=JobState.rendering, percent=round(min(percent, 99.9), 1),
                         message=message)
        self.loop.call_soon_threadsafe(self._publish, event)

    def _publish(self, event: JobEvent) -> None:
        if not self.closed:
            self.pending.append(asyncio.ensure_future(self.bus.publish(event)))

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
