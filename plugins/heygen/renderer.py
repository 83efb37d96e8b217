"""The HeyGen renderer: set up on first use, then submit once, wait frugally and deliver at once.

It `WaitsRemotely`: in the daemon a job holds its slot only while it is submitted, then waits
for HeyGen holding none, and any node checks on it when due (or at once, when the webhook
says so). Each job lives in a module of its own: uploads.py (local files, once per content),
spending.py (the cost guard), submitting.py (create and resume), waiting.py (when to look
and what a look says), delivery.py (download, check, square, join), webhook_endpoint.py
(registration).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from avatar_daemon import AvatarProfile, Progress, RemoteWait, RenderError, RenderRequest, RenderResult, secret

from . import delivery, submitting, webhook_endpoint
from .catalogue import Catalogue, renders
from .client import HeyGenClient, until
from .plan import Plan, make_plan
from .settings import HeyGenSettings
from .spending import CostGuard
from .uploads import Uploads
from .waiting import Waiting

KEY_NAME = "HEYGEN_API_KEY"
WEBHOOK_SECRET_NAME = "HEYGEN_WEBHOOK_SECRET"
# A webhook's event_type for a video that stopped rendering, as the status a look would have found
FINISHED_BY_WEBHOOK = {"avatar_video.success": "completed", "avatar_video.fail": "failed"}


class HeyGenRenderer:
    name = "heygen"

    def __init__(self, daemon: Any, cfg: HeyGenSettings):
        self.daemon = daemon
        self.cfg = cfg
        self.max_concurrency = cfg.max_concurrency
        # The job runner's limit from the submit: our own deadline, plus time to download and join.
        self.timeout_seconds = cfg.deadline_seconds + 900
        self._client: HeyGenClient | None = None
        self._instance: str | None = None   # this database's id, part of every idempotency key
        self.webhook_secret: str | None = secret(WEBHOOK_SECRET_NAME)
        self.webhook_active = self.webhook_secret is not None  # an endpoint registered by hand
        self.catalogue = Catalogue(daemon.settings.data_dir / "heygen-catalogue.json")
        self.uploads = Uploads(daemon, lambda: self.client)
        self.guard = CostGuard(daemon, cfg, lambda: self.client)
        self.waiting = Waiting(cfg)

    # ---- the client, made on first use so a daemon without a key still starts --------

    @property
    def client(self) -> HeyGenClient:
        if self._client is None or self._client.session is not self.daemon.http:
            key = secret(KEY_NAME)
            if not key:
                raise RenderError(f"HeyGen needs an API key: set {KEY_NAME} in the environment or as a systemd "
                                  "credential (LoadCredential=)")
            if self.daemon.http is None:
                raise RenderError("the HeyGen renderer is used before the daemon started")
            c = self.cfg
            self._client = HeyGenClient(self.daemon.http, key, c.base_url, c.upload_url,
                                        max_in_flight=c.max_calls_in_flight, retries=c.retries,
                                        timeout=c.request_timeout_seconds, retry_after_cap=c.retry_after_cap_seconds,
                                        backoff=c.backoff_seconds, max_renders=c.account_concurrency,
                                        forget_renders_after=c.deadline_seconds, store=self.daemon.store)
        return self._client

    # ---- what the contract asks of a renderer ------------------------------------------

    def api_calls(self) -> dict[tuple[str, str], int]:
        """HeyGen calls by endpoint and outcome, for /metrics."""
        return dict(self._client.calls) if self._client else {}

    def list_avatars(self) -> list[AvatarProfile]:
        """Profiles HeyGen can render (a look, or a talking photo it can upload), with HeyGen's previews."""
        return self.catalogue.decorate(a for a in self.daemon.settings.avatars.values() if renders(a))

    async def sync_catalogue(self) -> list[str]:
        return await self.catalogue.sync(self.client, self.daemon.settings.avatars.values())

    async def dry_run(self, request: RenderRequest) -> list[dict[str, Any]]:
        plan = await self.plan(request, upload=False)
        if plan.engine_check:  # no key needed: the last `avatars --sync` saved what each look supports
            look_id, engine = plan.engine_check
            engines = self.catalogue.data.get("looks", {}).get(look_id, {}).get("supported_api_engines")
            if engines is not None and engine not in engines:
                raise RenderError(f"avatar profile {request.avatar.id!r}: HeyGen look {look_id!r} does not support "
                                  f"engine {engine} (it supports: {', '.join(engines) or 'none listed'})")
        return plan.as_requests(self.cfg.base_url)

    async def render(self, request: RenderRequest, progress: Progress) -> RenderResult:
        """The whole job in this task (the command line's `render`): submit, then look on the schedule."""
        outcome: RenderResult | RemoteWait = await self.submit(request, progress)
        submitted = time.monotonic()
        plan, parts = await self.plan(request, upload=False), len((request.external_id or "").split(","))
        while isinstance(outcome, RemoteWait):
            due = time.monotonic() + outcome.check_in
            while (left := due - time.monotonic()) > 0:  # no call: an estimate from the time HeyGen usually takes
                await asyncio.sleep(min(left, self.cfg.progress_tick_seconds))
                progress(self.waiting.estimate(plan, parts, time.monotonic() - submitted), "rendering at HeyGen")
            outcome = await self.check(request, progress, time.monotonic() - submitted)
        return outcome

    async def submit(self, request: RenderRequest, progress: Progress) -> RemoteWait:
        """Create the job's videos once (or find them again); 429s for concurrency or rate are waited out
        until the deadline. A resumed job is looked at straight away: it may have finished meanwhile."""
        with until(time.monotonic() + self.cfg.deadline_seconds):
            plan = await self.plan(request)
            if not request.external_id:
                await self.check_engine(request, plan)
            ids, submitted_at = await submitting.submit(
                self.client, self.daemon.store, self.guard, request, plan, progress,
                lambda waited: self.waiting.next_look(plan, len(plan.parts), waited, self.webhook_active))
        request.external_id = ",".join(ids)
        first = self.waiting.next_look(plan, len(ids), 0.0, self.webhook_active) if submitted_at else 0.0
        return RemoteWait(check_in=first, percent=5, message=f"waiting for HeyGen ({len(ids)} video(s))")

    async def check(self, request: RenderRequest, progress: Progress, waited: float) -> RenderResult | RemoteWait:
        """One look at each part, in order, up to the first not finished; all finished: delivered at once
        (HeyGen's links expire). Past heygen.deadline_seconds, a look that finds it unfinished times out."""
        ids = [v for v in (request.external_id or "").split(",") if v]
        if not ids:
            raise RenderError(f"job {request.job_id} waits for HeyGen but has no HeyGen video id")
        c = self.cfg
        plan = await self.plan(request, upload=False)  # what delivery needs; the uploads were made at submit
        with until(time.monotonic() + max(c.deadline_seconds - waited, 1.0)):
            videos = []
            for video_id in ids:
                videos.append(await self.client.get_video(video_id))
                if videos[-1].status != "completed":
                    break
            wait = self.waiting.look(videos, ids, plan, waited, self.webhook_active)
            if wait is None:
                return await delivery.deliver(self.client, c, request, plan, videos, progress, waited)
        left = c.deadline_seconds - waited
        if left <= 0:
            raise TimeoutError(f"HeyGen did not finish video {', '.join(ids)} within {c.deadline_seconds:g} s "
                               "(heygen.deadline_seconds)")
        return wait.model_copy(update={"check_in": min(wait.check_in, left)})

    async def plan(self, request: RenderRequest, upload: bool = True) -> Plan:
        if self._instance is None and self.daemon.store:
            self._instance = await self.daemon.store.instance_id()
        if upload:
            await self.uploads.upload_for(request)
        template = self.daemon.settings.templates.get(request.template_id or "")
        return make_plan(request, self.cfg, self._instance or "dry-run", self.uploads.url, self.uploads.asset_id,
                         template)

    async def check_engine(self, request: RenderRequest, plan: Plan) -> None:
        """Avatar V exists only for some looks: ask HeyGen about the look before paying for a 400."""
        if not plan.engine_check:
            return
        look_id, engine = plan.engine_check
        look = await self.client.avatar_look(look_id)
        if engine not in look.supported_api_engines:
            offered = ", ".join(look.supported_api_engines) or "none listed"
            raise RenderError(f"avatar profile {request.avatar.id!r}: HeyGen look {look_id!r} does not support "
                              f"engine {engine} (it supports: {offered}); set engine: avatar_iv on the profile or "
                              "template")

    # ---- the webhook: registered at start, a delivery makes its job's check due at once -------

    async def register_webhook(self) -> None:
        """Make sure HeyGen posts to our public URL, and that we hold the secret it signs with."""
        if not self.cfg.public_url:
            return
        url = self.cfg.public_url.rstrip("/") + self.cfg.webhook_path
        self.webhook_secret = await webhook_endpoint.register(self.client, self.daemon.store, url)
        self.webhook_active = True

    async def delivered(self, video_id: str, kind: str = "") -> list[int]:
        """A verified webhook names a video: the job waiting for it is checked now, by whichever node
        claims it first (the delivery may land on any node); the job ids. A video finished (`kind`
        avatar_video.success or .fail, signed by HeyGen) also frees its render in every node's count
        at once: a job still making its later parts may be waiting for that render on another node,
        and no check looks at a job that is still submitting."""
        status = FINISHED_BY_WEBHOOK.get(kind)
        if status and self.client.renders is not None:
            await self.client.renders.seen(video_id, status)
        return await self.daemon.jobs.check_remote_now(self.name, video_id)
