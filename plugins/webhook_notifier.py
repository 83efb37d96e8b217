"""A notifier that POSTs each job event as JSON to a URL, signed with HMAC-SHA256.

Settings (daemon.yaml `plugins.settings.webhook`): `url`, optional `states` to send
(default: every state but progress), `retries`, `public_url` (the address the receiver
reaches this daemon at) and `link_hours` (how long its links play, default 72). Each job
event carries what a receiver acts on: `video_id`, `title`, `workspace_id`, `user_id`,
`format`, `duration`, and with `public_url` the `video_url` and `thumbnail_url` (signed share
links: they play without a token until `links_expire_at`) and `page_url` (the API's JSON, with
a bearer token); a remote renderer's own public link is `video_url` when there is no `public_url`.
A post to a platform that ends is `publication.published` (with `publication.url`, the post)
or `publication.failed` (with `publication.error`, the platform's reason), sent when `states`
is unset or lists `publication`; its progress stays local. Files on this
machine are never named. The signing secret comes from the
environment variable AVATAR_DAEMON_WEBHOOK_SECRET (or a systemd credential of that
name). Receivers check `X-Avatar-Signature: sha256=<hex of HMAC(secret, timestamp + "." + body)>`
and `X-Avatar-Timestamp`, which stops replays.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta

import aiohttp

from avatar_daemon import GaveUp, JobEvent, Notice, TryAgain, hookimpl, retry_after, retrying, secret, share_link

log = logging.getLogger(__name__)
LOCAL_FILES = {"video", "thumbnail", "srt", "vtt", "metadata"}  # paths on this machine, of no use elsewhere


def sign(secret_value: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret_value.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookNotifier:
    name = "webhook"

    def __init__(self, daemon, url: str | None, states: list[str] | None, retries: int, base_delay: float,
                 public_url: str | None = None, link_hours: float = 72):
        self.daemon = daemon
        self.link_hours = link_hours
        self.url = url
        self.public_url = (public_url or "").rstrip("/") or None
        self.states = set(states) if states else None
        self.retries = retries
        self.base_delay = base_delay

    async def notify(self, event: JobEvent) -> None:
        if not self.url:
            return
        if event.publication is not None:  # a post: the job's own state ("completed") did not change
            await self._publication(event)
            return
        if self.states is not None and event.state.value not in self.states:
            return
        if self.states is None and event.state.value == "rendering" and event.percent not in (0, None):
            return  # progress ticks stay local unless asked for
        payload = event.model_dump(mode="json")
        payload["data"] = {k: v for k, v in payload["data"].items() if k not in LOCAL_FILES}
        body = json.dumps({"type": "job." + event.state.value, **payload, **await self._video(event.job_id)}).encode()
        await self._post(self.url, body, f"job {event.job_id} {event.state.value}")

    async def _publication(self, event: JobEvent) -> None:
        post = event.publication or {}
        if post.get("state") not in ("published", "failed") or (self.states is not None
                                                               and "publication" not in self.states):
            return
        body = json.dumps({"type": f"publication.{post['state']}", "job_id": event.job_id, "at": event.at.isoformat(),
                           "message": event.message, "publication": post, **await self._video(event.job_id)}).encode()
        await self._post(self.url, body, f"job {event.job_id} publication {post.get('id')} {post['state']}")

    async def _video(self, job_id: int) -> dict:
        """The video an event is about, as a receiver elsewhere can use it."""
        store = getattr(self.daemon, "store", None)
        job = await store.job(job_id) if store is not None else None
        if job is None:
            return {"video_id": job_id}
        result = job.result or {}
        out = {"video_id": job.id, "title": job.title, "workspace_id": job.workspace_id, "user_id": job.user_id,
               "format": job.format, "campaign_id": job.campaign_id, "duration": result.get("duration")}
        base = self.public_url
        if base:
            out["page_url"] = f"{base}/videos/{job.id}"
            if result.get("video"):  # signed links: the receiver has no token of ours, and needs none
                expires = self.daemon.clock() + timedelta(hours=self.link_hours)
                link = base + share_link(self.daemon.settings.data_dir, job.id, expires)
                out["video_url"] = link
                if result.get("thumbnail"):
                    out["thumbnail_url"] = f"{link}/thumbnail"
                out["links_expire_at"] = expires.isoformat(timespec="seconds")
        if "video_url" not in out and result.get("video_url"):
            out["video_url"] = result["video_url"]  # the remote renderer's own link
        return out

    async def notice(self, notice: Notice) -> None:
        """Notices go to the configured URL and to a campaign's own `notify.webhook`."""
        body = json.dumps({"type": notice.kind, **notice.model_dump(mode="json")}).encode()
        urls = {self.url, (notice.data.get("notify") or {}).get("webhook")} - {None}
        for url in urls:
            await self._post(url, body, notice.kind)

    async def _post(self, url: str, body: bytes, what: str) -> None:
        key = secret("AVATAR_DAEMON_WEBHOOK_SECRET") or ""

        async def attempt() -> None:
            timestamp = str(int(time.time()))  # signed afresh each try: receivers refuse stale stamps
            headers = {"Content-Type": "application/json", "X-Avatar-Timestamp": timestamp,
                       "X-Avatar-Signature": sign(key, timestamp, body)}
            try:
                async with self.daemon.http.post(url, data=body, headers=headers,
                                                 timeout=aiohttp.ClientTimeout(total=10)) as resp:
                    if resp.status == 429 or resp.status >= 500:
                        raise TryAgain(f"HTTP {resp.status}", retry_after(resp.headers.get("Retry-After")))
                    if resp.status >= 400:
                        log.warning("webhook refused %s: HTTP %s", what, resp.status)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise TryAgain(type(exc).__name__) from None

        try:
            await retrying(attempt, retries=self.retries, base_delay=self.base_delay)
        except GaveUp as exc:
            log.warning("webhook gave up on %s after %d attempts: %s", what, exc.tries, exc.reason)


@hookimpl
def register_notifiers(register, daemon):
    cfg = daemon.plugin_config("webhook")
    register(WebhookNotifier(daemon, cfg.get("url"), cfg.get("states"), int(cfg.get("retries", 4)),
                             float(cfg.get("base_delay", 1.0)), cfg.get("public_url"),
                             float(cfg.get("link_hours", 72))))


class NotifyTarget:
    """Claims a campaign's `notify.webhook`: a URL its notices are POSTed to as well."""

    name = "webhook"
    model = str | None


@hookimpl
def register_notify_targets(register):
    register(NotifyTarget())
