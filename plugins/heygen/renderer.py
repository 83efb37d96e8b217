"""The HeyGen renderer: submit once (idempotently), wait frugally, download at once, check what came back."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from avatar_daemon import AvatarProfile, Progress, RenderError, RenderRequest, RenderResult, secret

from . import media
from .api import HeyGenError, Quota, Video, VideoCreated
from .catalogue import Catalogue
from .client import HeyGenClient, LinkExpired, until
from .plan import Plan, make_plan
from .settings import HeyGenSettings

log = logging.getLogger(__name__)

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
        self.waiters: dict[str, asyncio.Event] = {}
        self.early: dict[str, float] = {}   # webhooks for videos whose create answer we have not seen yet
        self.webhook_secret: str | None = secret(WEBHOOK_SECRET_NAME)
        self.webhook_active = self.webhook_secret is not None  # an endpoint registered by hand
        self.render_ratio = cfg.render_ratio
        self._quota: tuple[float, Quota] | None = None
        self._assets: dict[str, str] = {}
        self._guard_lock = asyncio.Lock()
        self.catalogue = Catalogue(daemon.settings.data_dir / "heygen-catalogue.json")

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

    def api_calls(self) -> dict[tuple[str, str], int]:
        """HeyGen calls by endpoint and outcome, for /metrics."""
        return dict(self._client.calls) if self._client else {}

    def list_avatars(self) -> list[AvatarProfile]:
        """Profiles HeyGen can render, with HeyGen's preview image and video where the catalogue has them."""
        return self.catalogue.decorate(a for a in self.daemon.settings.avatars.values() if a.renderer_ids.get("heygen"))

    async def sync_catalogue(self) -> list[str]:
        return await self.catalogue.sync(self.client, self.daemon.settings.avatars.values())

    # ---- planning, and the dry run that needs no key ------------------------------------

    async def plan(self, request: RenderRequest, upload: bool = True) -> Plan:
        if self._instance is None and self.daemon.store:
            self._instance = await self.daemon.store.instance_id()
        instance = self._instance or "dry-run"
        if upload:
            for path in _local_assets(request):
                await self._upload(path)
        return make_plan(request, self.cfg, instance, lambda p: self._assets.get(p, f"<upload of {p}>"))

    async def dry_run(self, request: RenderRequest) -> list[dict[str, Any]]:
        plan = await self.plan(request, upload=False)
        return plan.as_requests(self.cfg.base_url)

    async def _upload(self, path: str) -> None:
        if path in self._assets:
            return
        local = Path(path)
        data = await asyncio.to_thread(local.read_bytes)
        key = f"heygen.asset.{hashlib.sha256(data).hexdigest()}"
        url = await self.daemon.store.get_meta(key)
        if not url:  # uploaded once per content, ever
            asset = await self.client.upload_asset(local, data)
            url = asset.url or asset.id
            await self.daemon.store.set_meta(key, url)
        self._assets[path] = url

    # ---- render ----------------------------------------------------------------------

    async def render(self, request: RenderRequest, progress: Progress) -> RenderResult:
        """One deadline for the whole job: 429s for concurrency or rate are waited out until it, then polling."""
        deadline = time.monotonic() + self.cfg.deadline_seconds
        with until(deadline):
            return await self._render(request, progress, deadline)

    async def _render(self, request: RenderRequest, progress: Progress, deadline: float) -> RenderResult:
        plan = await self.plan(request)
        # One slot per part, in order; an empty slot is a part not created yet (or dropped below).
        saved = request.external_id.split(",") if request.external_id else []
        slots: list[str | None] = [i or None for i in saved] + [None] * (len(plan.parts) - len(saved))
        if request.retry:
            await self._drop_failed(request, slots)
        submitted_at = None  # wall clock, to learn from HeyGen's completed_at; unknown for a resumed job
        missing = [i for i, video_id in enumerate(slots) if video_id is None]
        if missing:
            submitted_at = time.time()
            if len(missing) == len(plan.parts):
                await self._guard(request, plan)
            # v2 creates (Studio, templates) have no idempotency key: after a crash mid-create within
            # this try, look for the video by its callback id before paying for a second one.
            retrying = plan.api != "v3" and await self._submitted_before(request.job_id)
            await progress.submitting(f"submitting to HeyGen ({len(missing)} video(s))")
            for i in missing:
                part = plan.parts[i]
                found = await self._find_by_callback(part.key) if retrying else None
                if found:
                    created = found
                elif part.path == "/v3/videos":
                    created = await self.client.create_video(part.body, part.key)
                elif plan.api == "template":
                    created = await self.client.generate_from_template(part.path.split("/")[3], part.body)
                else:
                    created = await self.client.studio_generate(part.body)
                slots[i] = created.video_id
                await progress.submitted(",".join(v or "" for v in slots))  # saved before anything else can go wrong
            log.info("heygen: job %s submitted as %s", request.job_id, ", ".join(v or "" for v in slots))
        else:
            progress(1, "waiting for HeyGen (resumed)")
        ids = [v for v in slots if v]
        started = time.monotonic()
        videos = await asyncio.gather(*[self._wait(v, plan, progress, started, deadline, len(ids), submitted_at)
                                        for v in ids])
        return await self._deliver(request, plan, list(videos), progress, time.monotonic() - started)

    async def _drop_failed(self, request: RenderRequest, slots: list[str | None]) -> None:
        """On a person's retry, a saved video HeyGen failed (or no longer has) is made again; any other is resumed.

        The new create carries this retry's idempotency key: the first try's key would only
        be answered with the video that failed.
        """
        for i, video_id in enumerate(slots):
            if video_id is None:
                continue
            try:
                video = await self.client.get_video(video_id)
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

    async def _submitted_before(self, job_id: int) -> bool:
        """Whether this try already reached the create call (a `submitting` event since the last retry)."""
        submitting = False
        for event in await self.daemon.store.events(job_id):
            if event.data.get("retry"):
                submitting = False
            elif event.state.value == "submitting":
                submitting = True
        return submitting

    async def _find_by_callback(self, callback_id: str) -> VideoCreated | None:
        """The newest page of HeyGen's video list, searched for our callback id."""
        seen = 0
        async for item in self.client.list_videos(limit=100):
            if item.get("callback_id") == callback_id:
                log.info("heygen: found video %s made before the crash; not creating another",
                         item.get("id") or item.get("video_id"))
                return VideoCreated(video_id=item.get("id") or item["video_id"], status=item.get("status"))
            seen += 1
            if seen >= 100:
                return None
        return None

    async def _guard(self, request: RenderRequest, plan: Plan) -> None:
        """Refuse before spending: daily and per-campaign limits, then HeyGen's own remaining credits."""
        if self.cfg.test_mode and plan.api != "v3":
            return  # Studio and template test renders are free
        async with self._guard_lock:  # check and count as one step, or ten jobs all pass a limit of one
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
            renders, used = await store.usage(self.name, day, campaign, exclude_job=request.job_id)
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
        await store.record_usage(request.job_id, self.name, seconds, request.campaign_id)

    async def _remaining(self) -> Quota:
        now = time.monotonic()
        if self._quota is None or now - self._quota[0] > self.cfg.quota_cache_seconds:
            self._quota = (now, await self.client.quota())
        return self._quota[1]

    # ---- waiting: webhook first, polling as the safety net ---------------------------------

    def delivered(self, video_id: str) -> None:
        """A verified webhook names a video: wake its waiter, or remember it for one about to start."""
        event = self.waiters.get(video_id)
        if event is not None:
            event.set()
        else:
            self.early[video_id] = time.monotonic()
            for stale in [k for k, at in self.early.items() if time.monotonic() - at > 3600]:
                del self.early[stale]

    async def _wait(self, video_id: str, plan: Plan, progress: Progress, started: float, deadline: float,
                    parts: int, submitted_at: float | None) -> Video:
        c = self.cfg
        spoken = plan.estimated_seconds / max(1, parts)
        expected = max(c.poll_first_seconds, self.render_ratio * spoken)
        grace = c.webhook_grace if self.webhook_active else 1.0  # with a webhook, polls are only a safety net
        # Polling alone: look a little before the expected time, so a quick render is not kept waiting.
        first = expected * (grace if self.webhook_active else 0.8)
        interval = max(expected * grace / 4, 1e-3)
        next_poll = started + first
        wake = self.waiters.setdefault(video_id, asyncio.Event())
        if self.early.pop(video_id, None) is not None:
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
                video = await self.client.get_video(video_id)
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
            self.waiters.pop(video_id, None)

    def _learn(self, elapsed: float, spoken: float) -> None:
        """Move the expected render time towards what HeyGen really took, so the first poll lands on time.

        Measured against our own estimate of the spoken seconds, the same figure the next
        prediction starts from, so an estimate that is off by a constant factor cancels out.
        """
        observed = elapsed / max(spoken, 1.0)
        self.render_ratio = max(0.01, 0.7 * self.render_ratio + 0.3 * observed)

    # ---- download, check, square, join ---------------------------------------------------

    async def _deliver(self, request: RenderRequest, plan: Plan, videos: list[Video], progress: Progress,
                       waited: float) -> RenderResult:
        out = request.output_dir
        out.mkdir(parents=True, exist_ok=True)
        before = set(out.iterdir())
        try:
            return await self._place(request, plan, videos, progress, waited, out)
        except OSError as exc:  # a full disk, most often: nothing half-written may pose as a result
            for path in set(out.iterdir()) - before:
                path.unlink(missing_ok=True)
            where = exc.filename or out
            reason = (exc.strerror or str(exc)).lower()
            raise RenderError(f"cannot write {where}: {reason}; nothing was kept (HeyGen's video is kept "
                              "there: a retry downloads it again without paying twice)") from None

    async def _place(self, request: RenderRequest, plan: Plan, videos: list[Video], progress: Progress,
                     waited: float, out: Path) -> RenderResult:
        progress(96, "downloading from HeyGen")
        files = [await self._download(v, out, i if len(videos) > 1 else None, request.captions) for i, v in
                 enumerate(videos)]
        video = out / "video.mp4"
        srt_texts = [f["srt"].read_text(encoding="utf-8-sig") if f.get("srt") else "" for f in files]
        if len(files) > 1:
            starts = await asyncio.to_thread(media.concat, [f["video"] for f in files], video)
            for f in files:
                f["video"].unlink()
        else:
            starts = [0.0]
            files[0]["video"].replace(video)
        if plan.square:
            progress(98, f"making the square cut ({plan.square})")
            source = video.with_name("heygen-16x9.mp4")
            video.replace(source)
            pad = request.background.value if request.background.type != "image" else "#000000"
            await asyncio.to_thread(media.square, source, video, request.format.width, plan.square, pad)
            source.unlink()
        duration = await asyncio.to_thread(media.probe, video)
        srt = vtt = None
        if any(srt_texts):
            text = media.join_srt(srt_texts, starts) if len(files) > 1 else srt_texts[0]
            srt = await asyncio.to_thread(_write_whole, out / "video.srt", text)
            vtt = await asyncio.to_thread(_write_whole, out / "video.vtt", media.srt_to_vtt(text))
        for f in files:
            if f.get("srt") and f["srt"] != srt:
                f["srt"].unlink(missing_ok=True)
        thumbnail = files[0].get("thumbnail")
        metadata = await asyncio.to_thread(_write_whole, out / "metadata.json", json.dumps({
            "renderer": self.name, "title": request.script.title, "script": request.script.text,
            "description": request.script.description, "hashtags": request.script.hashtags,
            "format": request.format.name, "avatar": request.avatar.id, "duration": round(duration, 2),
            "heygen": {"api": plan.api, "video_ids": [v.video_id for v in videos], "rendered_as": plan.source_aspect,
                       "square": plan.square, "parts": len(videos), "notes": plan.notes,
                       "waited_seconds": round(waited, 1)},
        }, indent=2, ensure_ascii=False))
        return RenderResult(video=video, thumbnail=thumbnail, srt=srt, vtt=vtt, metadata=metadata,
                            duration=duration, external_id=",".join(v.video_id or "" for v in videos),
                            video_url=videos[0].video_url if len(videos) == 1 else None)

    async def _download(self, video: Video, out: Path, index: int | None, captions: bool) -> dict[str, Path]:
        """Video, thumbnail and subtitles; an expired link is replaced by one status call and tried again."""
        suffix = "" if index is None else f".part-{index}"
        wanted = {"video": out / f"heygen{suffix}.mp4", "thumbnail": out / f"thumbnail{suffix}.jpg",
                  "srt": out / f"heygen{suffix}.srt"}
        got: dict[str, Path] = {}
        for attempt in range(1, 4):
            urls = {"video": (captions and video.captioned_video_url) or video.video_url,
                    "thumbnail": video.thumbnail_url, "srt": video.subtitle_url}
            try:
                for name, dest in wanted.items():
                    if name in got or not urls[name]:
                        continue
                    await self.client.download(urls[name], dest, self.cfg.max_download_bytes)
                    got[name] = dest
                break
            except LinkExpired:
                if attempt == 3:
                    raise RenderError(f"HeyGen's download links for video {video.video_id} kept expiring") from None
                video = await self.client.get_video(video.video_id)  # every status call signs fresh links
            except HeyGenError as exc:
                if exc.code != "network" or attempt == 3:
                    raise
                await asyncio.sleep(self.cfg.backoff_seconds * 2 ** attempt)  # a dropped connection: try again
        if "video" not in got:
            raise RenderError(f"HeyGen reported video {video.video_id} completed without a video URL")
        await asyncio.to_thread(media.probe, got["video"])
        return got

    # ---- webhook endpoint registration ---------------------------------------------------

    async def register_webhook(self) -> None:
        """Make sure HeyGen posts to our public URL, and that we hold the secret it signs with."""
        if not self.cfg.public_url:
            return
        url = self.cfg.public_url.rstrip("/") + self.cfg.webhook_path
        store = self.daemon.store
        known_id = await store.get_meta("heygen.webhook.endpoint_id")
        stored = await store.get_meta("heygen.webhook.secret")
        endpoints = await self.client.webhooks()
        mine = next((e for e in endpoints if e.url == url), None)
        if mine and mine.endpoint_id == known_id and stored:
            self.webhook_secret = stored
        elif mine:  # registered before, but we lost its secret: a new one is only shown on rotation
            rotated = await self.client.rotate_webhook_secret(mine.endpoint_id)
            await self._keep_secret(mine.endpoint_id, rotated.secret)
        else:
            created = await self.client.create_webhook(url)
            await self._keep_secret(created.endpoint_id, created.secret)
        self.webhook_active = True
        log.info("heygen: webhook endpoint registered at %s", url)

    async def _keep_secret(self, endpoint_id: str, value: str | None) -> None:
        if not value:
            raise RenderError("HeyGen registered the webhook endpoint but returned no signing secret")
        await self.daemon.store.set_meta("heygen.webhook.endpoint_id", endpoint_id)
        await self.daemon.store.set_meta("heygen.webhook.secret", value)
        self.webhook_secret = value


def _write_whole(path: Path, text: str) -> Path:
    """Under a temporary name, synced, then renamed: a full disk leaves no truncated file in place."""
    part = path.with_name(path.name + ".part")
    try:
        with part.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    part.replace(path)
    return path


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _local_assets(request: RenderRequest) -> list[str]:
    bg = request.background
    if bg.type in ("image", "video") and bg.path and not bg.path.startswith(("http://", "https://")):
        return [bg.path]
    return []

