"""The HeyGen renderer: set up on first use, then submit once, wait frugally and deliver at once.

Each job lives in a module of its own: uploads.py (local files, once per content),
spending.py (the cost guard), submitting.py (create and resume), waiting.py (webhook and
polls), delivery.py (download, check, square, join), webhook_endpoint.py (registration).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from avatar_daemon import AvatarProfile, Progress, RenderError, RenderRequest, RenderResult, secret

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


class HeyGenRenderer:
    name = "heygen"

    def __init__(self, daemon: Any, cfg: HeyGenSettings):
        self.daemon = daemon
        self.cfg = cfg
        self.max_concurrency = cfg.max_concurrency
        # The job runner's limit: our own deadline, plus time to download and join.
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
                                        backoff=c.backoff_seconds)
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
        """One deadline for the whole job: 429s for concurrency or rate are waited out until it, then polling."""
        deadline = time.monotonic() + self.cfg.deadline_seconds
        with until(deadline):
            plan = await self.plan(request)
            if not request.external_id:
                await self.check_engine(request, plan)
            ids, submitted_at = await submitting.submit(self.client, self.daemon.store, self.guard, request, plan,
                                                        progress)
            started = time.monotonic()
            videos = await asyncio.gather(*[
                self.waiting.wait(self.client, v, plan, progress, started=started, deadline=deadline, parts=len(ids),
                                  submitted_at=submitted_at, webhook=self.webhook_active) for v in ids])
            return await delivery.deliver(self.client, self.cfg, request, plan, list(videos), progress,
                                          time.monotonic() - started)

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

    # ---- the webhook: registered at start, deliveries wake the waiters --------------------

    async def register_webhook(self) -> None:
        """Make sure HeyGen posts to our public URL, and that we hold the secret it signs with."""
        if not self.cfg.public_url:
            return
        url = self.cfg.public_url.rstrip("/") + self.cfg.webhook_path
        self.webhook_secret = await webhook_endpoint.register(self.client, self.daemon.store, url)
        self.webhook_active = True

    def delivered(self, video_id: str) -> None:
        self.waiting.delivered(video_id)
