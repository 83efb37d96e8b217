"""HeyGen's REST API over one aiohttp session, with one gate per key so many jobs never stampede it."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import json as jsonlib
import logging
import mimetypes
import random
import time
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp

from avatar_daemon import GaveUp, TryAgain, retrying
from avatar_daemon import backoff as retry_backoff
from avatar_daemon import retry_after as retry_after_header

from .answers import (
    Asset,
    AvatarLook,
    HeyGenError,
    Quota,
    V3Asset,
    Video,
    VideoCreated,
    Voice,
    WebhookEndpoint,
    unwrap,
)
from .render_slots import Created, Look, RenderSlots

log = logging.getLogger(__name__)

# What a create's caller does with the answer while the render is held (saves the id).
Saved = Callable[[VideoCreated], Awaitable[None]] | None

SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "DELETE"}
EVENTS = ["avatar_video.success", "avatar_video.fail"]
# 429s that pass with time: waited out until the job's deadline, however many it takes.
# (Another 429, such as a used-up quota, still gets only `retries` tries.)
PATIENT_CODES = {"concurrent_limit_exceeded", "rate_limit_exceeded"}

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("heygen_job_deadline", default=None)


@contextlib.contextmanager
def until(deadline: float):
    """Calls made inside (and in tasks started inside) wait out PATIENT_CODES until `deadline` (monotonic)."""
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


class Gate:
    """Caps HeyGen calls in flight and, after a 429, holds every caller until Retry-After has passed."""

    def __init__(self, max_in_flight: int):
        self._slots = asyncio.Semaphore(max_in_flight)
        self.open_at = 0.0

    def hold(self, seconds: float) -> None:
        self.open_at = max(self.open_at, time.monotonic() + seconds)

    async def __aenter__(self) -> None:
        while True:
            wait = self.open_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._slots.acquire()
            if self.open_at <= time.monotonic():
                return
            self._slots.release()  # a 429 arrived while we queued: wait with the others

    async def __aexit__(self, *exc: object) -> None:
        self._slots.release()


class HeyGenClient:
    """Every call has a timeout, counts in `calls` by endpoint and outcome, and retries only when safe."""

    def __init__(self, session: aiohttp.ClientSession, api_key: str, base_url: str = "https://api.heygen.com",
                 upload_url: str = "https://upload.heygen.com", *, max_in_flight: int = 4, retries: int = 4,
                 timeout: float = 30.0, retry_after_cap: float = 120.0, backoff: float = 1.0,
                 max_renders: int | None = None, forget_renders_after: float = 3 * 3600.0, store: Any = None):
        self.session = session
        self._key = api_key
        self.base_url = base_url.rstrip("/")
        self.upload_url = upload_url.rstrip("/")
        self.gate = Gate(max_in_flight)
        self.retries = retries
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=min(10.0, timeout))
        self.retry_after_cap = retry_after_cap
        self.backoff = backoff
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()
        # None: creates are not held back (HeyGen's 429s are then the only cap). With the daemon's
        # store, the renders of every node on the key count (see render_slots.py).
        self.renders = RenderSlots(max_renders, forget_renders_after, store) if max_renders else None

    def __repr__(self) -> str:
        return f"HeyGenClient({self.base_url!r})"  # never the key

    # ---- the one place a request is made -------------------------------------------

    async def call(self, method: str, path: str, name: str, *, json: Any = None, params: dict | None = None,
                   data: Any = None, content_type: str | None = None, idempotency_key: str | None = None,
                   base: str | None = None) -> Any:
        """`data` of HeyGen's answer; 429 always retried, 5xx/timeouts only when a repeat cannot duplicate."""
        headers = {"x-api-key": self._key, "accept": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if content_type:
            headers["content-type"] = content_type
        url = (base or self.base_url) + path
        repeatable = method in SAFE_METHODS or idempotency_key is not None

        async def attempt() -> Any:
            try:
                async with self.gate:
                    async with self.session.request(method, url, json=json, params=params,
                                                    data=data() if callable(data) else data,
                                                    headers=headers, timeout=self.timeout) as resp:
                        retry_after = retry_after_header(resp.headers.get("Retry-After"))
                        status = resp.status
                        text = await resp.text()
                result = unwrap(status, _json(text), retry_after)
            except HeyGenError as exc:
                self.calls[name, str(exc.status)] += 1
                error = exc
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self.calls[name, "network"] += 1
                error = HeyGenError(0, "network", f"HeyGen did not answer {name}: {type(exc).__name__} {exc}".strip())
            else:
                self.calls[name, "ok"] += 1
                return result
            # A 429 means "not accepted", so any method may repeat it; other failures only when safe.
            if not error.retryable or not (error.status == 429 or repeatable):
                raise error
            raise TryAgain(error.code, error.retry_after,
                           patient=error.status == 429 and error.code in PATIENT_CODES) from error

        def wait(tries: int, failure: TryAgain) -> float:
            delay = self._delay(tries, failure.after)
            error = failure.__cause__
            if error.status == 429 and error.code != "concurrent_limit_exceeded":
                self.gate.hold(delay)  # a rate limit: everyone waits, not only this caller
            log.info("heygen: %s answered %s; try %d in %.1f s", name, error.code, tries + 1, delay)
            return delay

        try:
            return await retrying(attempt, retries=self.retries, deadline=_deadline.get(), wait=wait)
        except GaveUp as exc:
            error = exc.last.__cause__
            if exc.past_deadline:
                raise TimeoutError(f"HeyGen answered {name} with 429 {error.code} {exc.tries} times, until the "
                                   "job's deadline (heygen.deadline_seconds)") from error
            raise error from None

    def _delay(self, tries: int, retry_after: float | None) -> float:
        """Never sooner than Retry-After; longer and longer when the refusals go on (the daemon's one
        backoff rule, jittered, so the jobs waiting on one concurrency slot do not all come back at once)."""
        growing = retry_backoff(tries, self.backoff, 60.0)
        if retry_after is None:
            return growing
        return max(min(retry_after, self.retry_after_cap) * random.uniform(1.0, 1.2), growing)

    # ---- videos (v3) ---------------------------------------------------------------

    async def create_video(self, body: dict[str, Any], idempotency_key: str, then: Saved = None,
                           look: Look | None = None) -> VideoCreated:
        return await self._create("POST", "/v3/videos", "create_video", then, look, json=body,
                                  idempotency_key=idempotency_key)

    async def _create(self, method: str, path: str, name: str, then: Saved, look: Look | None = None,
                      **kwargs: Any) -> VideoCreated:
        """A create, once a render is free for this key (see render_slots.py); `then(created)` saves
        its id while the render is still held, so other nodes count it before they create. `look`
        looks at the caller's own earlier parts while it waits (RenderSlots.create)."""
        held = self.renders.create(_deadline.get(), look) if self.renders else contextlib.nullcontext(Created())
        async with held as slot:
            created = VideoCreated.model_validate(await self.call(method, path, name, **kwargs))
            slot.video_id = created.video_id
            if then:
                await then(created)
            return created

    async def get_video(self, video_id: str) -> Video:
        data = await self.call("GET", f"/v3/videos/{video_id}", "get_video")
        video = Video.model_validate(data)
        video.video_id = video.video_id or data.get("video_id") or video_id
        if self.renders is not None:
            await self.renders.seen(video_id, video.status)
        return video

    async def list_videos(self, limit: int = 100) -> AsyncIterator[dict[str, Any]]:
        async for item in self._pages("/v3/videos", "list_videos", {"limit": limit}):
            yield item

    # ---- Studio (v2): what v3 cannot do yet (scenes, any dimension, test mode) -------

    async def studio_generate(self, body: dict[str, Any], then: Saved = None) -> VideoCreated:
        """v2 documents no idempotency, so this create is repeated only after a 429 (never accepted)."""
        return await self._create("POST", "/v2/video/generate", "studio_generate", then, json=body)

    async def generate_from_template(self, template_id: str, body: dict[str, Any], then: Saved = None,
                                     ) -> VideoCreated:
        return await self._create("POST", f"/v2/template/{template_id}/generate", "template_generate", then,
                                  json=body)

    # ---- catalogue -----------------------------------------------------------------

    async def avatar_look(self, look_id: str) -> AvatarLook:
        return AvatarLook.model_validate(await self.call("GET", f"/v3/avatars/looks/{look_id}", "avatar_look"))

    async def voices(self, voice_type: str = "public") -> list[Voice]:
        params = {"limit": 100, "type": voice_type}
        return [Voice.model_validate(i) async for i in self._pages("/v3/voices", "voices", params)]

    async def quota(self) -> Quota:
        # v3 has no quota endpoint yet; v2 stays until it does.
        return Quota.model_validate(await self.call("GET", "/v2/user/remaining_quota", "quota") or {})

    async def upload_asset(self, path: Path, data: bytes | None = None) -> Asset:
        """Upload a file (its bytes, if the caller has read them already) as a HeyGen asset."""
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if data is None:
            data = await asyncio.to_thread(path.read_bytes)
        return Asset.model_validate(await self.call("POST", "/v1/asset", "upload_asset", data=data,
                                                    content_type=kind, base=self.upload_url))

    async def create_asset(self, path: Path, data: bytes) -> V3Asset:
        """Upload a file through v3 (multipart, at most 32 MB) for a v3 video to name by asset id."""
        def form() -> aiohttp.FormData:  # a form is spent once sent: a retry after a 429 needs a new one
            made = aiohttp.FormData()
            made.add_field("file", data, filename=path.name,
                           content_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream")
            return made

        return V3Asset.model_validate(await self.call("POST", "/v3/assets", "create_asset", data=form))

    # ---- webhook endpoints (v3) -------------------------------------------------------

    async def create_webhook(self, url: str, events: list[str] = EVENTS) -> WebhookEndpoint:
        return WebhookEndpoint.model_validate(await self.call(
            "POST", "/v3/webhooks/endpoints", "create_webhook", json={"url": url, "events": events}))

    async def webhooks(self) -> list[WebhookEndpoint]:
        return [WebhookEndpoint.model_validate(i)
                async for i in self._pages("/v3/webhooks/endpoints", "list_webhooks", {})]

    async def rotate_webhook_secret(self, endpoint_id: str) -> WebhookEndpoint:
        return WebhookEndpoint.model_validate(await self.call(
            "POST", f"/v3/webhooks/endpoints/{endpoint_id}/rotate-secret", "rotate_webhook_secret"))

    # ---- helpers ---------------------------------------------------------------------

    async def _pages(self, path: str, name: str, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        token = None
        while True:
            data = await self.call("GET", path, name, params={**params, **({"token": token} if token else {})})
            if isinstance(data, list):  # an answer without a cursor is a single page
                for item in data:
                    yield item
                return
            for item in data.get("items", []):
                yield item
            token = data.get("next_token")
            if not token:
                return

    async def download(self, url: str, dest: Path, max_bytes: int) -> int:
        """Stream a presigned file to `dest` (via a .part file); 403/404 means the link has expired.

        The presigned host is not HeyGen's API, so the key is never sent to it.
        """
        part = dest.with_name(dest.name + ".part")
        size = 0
        try:
            async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=None, sock_read=60,
                                                                           connect=10)) as resp:
                if resp.status in (403, 404, 410):
                    self.calls["download", "expired"] += 1
                    raise LinkExpired(f"the download link answered HTTP {resp.status}")
                if resp.status != 200:
                    self.calls["download", str(resp.status)] += 1
                    raise HeyGenError(resp.status, f"http_{resp.status}", f"downloading {dest.name} failed")
                if resp.content_length and resp.content_length > max_bytes:
                    raise HeyGenError(0, "too_large", f"{dest.name} is {resp.content_length} bytes, over the "
                                      f"{max_bytes}-byte cap (heygen.max_download_bytes)")
                with part.open("wb") as out:
                    async for chunk in resp.content.iter_chunked(1 << 16):
                        size += len(chunk)
                        if size > max_bytes:
                            raise HeyGenError(0, "too_large", f"{dest.name} grew past the {max_bytes}-byte cap "
                                              "(heygen.max_download_bytes)")
                        out.write(chunk)
            part.replace(dest)
            self.calls["download", "ok"] += 1
            return size
        except aiohttp.ClientError as exc:
            self.calls["download", "network"] += 1
            raise HeyGenError(0, "network", f"downloading {dest.name} failed: {type(exc).__name__}") from None
        finally:
            part.unlink(missing_ok=True)


class LinkExpired(Exception):
    """A presigned URL that answers 403/404: ask the status call for a fresh one."""


def _json(text: str) -> Any:
    try:
        return jsonlib.loads(text) if text else None
    except ValueError:
        return text
