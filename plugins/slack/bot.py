"""The bot's state: which Slack message follows which video, coalesced progress, and delivery.

One message per video is posted when it is queued and edited in place as it moves. The
message is claimed before anything is awaited, so a command Slack delivers twice finds it
and posts nothing; events that arrive while chat.postMessage is still on its way (a 429
can hold it for seconds) are kept and applied once the message exists, so it always ends
on the job's final state and the video is always delivered. Edits are coalesced (one per
message every `progress_interval_seconds`, the final state always shown), so a fast render
never meets Slack's rate limits; the client also honours Retry-After when one is met anyway.
The message of each job is recorded in the store (`slack.message.<id>`), so a restarted
daemon edits the same message. Once the video is done, its posts to platforms ("Publish to…"
under the finished video) are lines on the same message, and each post's end (its URL, or the
platform's reason) is said once in the message's thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from avatar_daemon import JobEvent, JobState

from . import blocks
from .settings import SlackSettings

log = logging.getLogger(__name__)

FINAL = {"completed", "failed", "timeout", "cancelled"}
SLACK_ERRORS = (SlackClientError, aiohttp.ClientError, asyncio.TimeoutError)  # Slack said no, or was unreachable


def why(exc: BaseException) -> str:
    """Slack's error code, or the kind of failure; never the request (it carries the token)."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or exc.response.status_code)
    return type(exc).__name__


@dataclass
class Message:
    channel: str | None
    ts: str | None = None           # None while chat.postMessage is on its way
    team: str | None = None
    user: str | None = None
    last_sent: float = 0.0
    latest: JobEvent | None = None  # the newest state not shown yet
    flusher: asyncio.Task | None = None
    done: bool = False
    sent: list[str] = field(default_factory=list)   # the states shown, for tests and logs
    posted: asyncio.Event = field(default_factory=asyncio.Event)  # the post ended (ts says how)
    posts: dict[int, dict[str, Any]] = field(default_factory=dict)  # its publications, by id, as last heard
    announced: set[int] = field(default_factory=set)  # publications whose end was said in the thread
    posts_flusher: asyncio.Task | None = None

    def note(self, event: JobEvent) -> None:
        """Remember the newest state; a late progress report never replaces a final state."""
        if self.latest is None or not self.latest.state.final or event.state.final:
            self.latest = event


class SlackBot:
    def __init__(self, daemon: Any, cfg: SlackSettings, client: AsyncWebClient):
        self.daemon = daemon
        self.cfg = cfg
        self.client = client
        self.messages: dict[int, Message] = {}
        self.ignored: set[int] = set()   # videos with no Slack message: decided once, not per progress tick
        self.tasks: set[asyncio.Task] = set()

    def spawn(self, coro) -> asyncio.Task:
        """Background work we keep a reference to (Bolt does not keep its own), and whose failure is logged."""
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("slack: background work failed", exc_info=task.exception())

    # ---- who may do what ------------------------------------------------------------------------

    def caller(self, team: str | None, user: str | None):
        return self.daemon.videos.caller(team, user, f"<@{user}>")

    def avatars_for(self, team: str | None, user: str | None) -> list[dict[str, Any]]:
        who = self.caller(team, user)
        urls = self.daemon.previews.urls(self.cfg.public_url)  # ours only when Slack can reach us
        return [{**a.model_dump(include={"id", "name", "avatar_type", "tier", "style"}), "preview_image_url": urls[a.id][0]}
                for a in self.daemon.settings.avatars.values() if who.may_use(a)]

    def may_manage_campaigns(self, user: str | None) -> bool:
        return "*" in self.cfg.campaign_users or (user or "") in self.cfg.campaign_users

    # ---- the progress message -------------------------------------------------------------------------

    def follow(self, job: Any, channel: str | None, team: str | None, user: str | None) -> Message:
        """The one message of this video: claimed here, before any await, and posted in the background."""
        self.ignored.discard(job.id)
        msg = self.messages.get(job.id)
        if msg is None:
            msg = self.messages[job.id] = Message(channel, team=team, user=user)
            self.spawn(self._post(job, msg))
        return msg

    async def track(self, job: Any, channel: str | None, team: str | None, user: str | None) -> Message | None:
        """follow(), then wait for the post: the message, or None if Slack refused it."""
        msg = self.follow(job, channel, team, user)
        await msg.posted.wait()
        return msg if msg.ts else None

    async def _post(self, job: Any, msg: Message) -> None:
        shown: JobState | None = job.status
        try:
            stored = await self._stored(job.id)  # posted before a restart: edit that message
            if stored:
                msg.channel, msg.ts, shown = stored["channel"], stored["ts"], None
            else:
                resp = await self.client.chat_postMessage(
                    channel=msg.channel, text=f"{job.title}: queued",
                    blocks=blocks.progress(_job(job), job.status.value, job.percent, "queued"))
                msg.last_sent = time.monotonic()
                msg.sent.append(job.status.value)
                await self.daemon.store.set_meta(f"slack.message.{job.id}", json.dumps(
                    {"channel": resp["channel"], "ts": resp["ts"], "team": msg.team, "user": msg.user}))
                msg.channel, msg.ts = resp["channel"], resp["ts"]
        except SLACK_ERRORS as exc:
            log.warning("slack: cannot post the progress of video %s to %s: %s", job.id, msg.channel, why(exc))
            if self.messages.get(job.id) is msg:
                del self.messages[job.id]
                self.ignored.add(job.id)
            return
        finally:
            msg.posted.set()
        if shown is not None and msg.latest is None:
            # It may have moved before we were asked to follow it: the store has every persisted state.
            current = await self.daemon.store.job(job.id)
            if current is not None and current.status is not shown and msg.latest is None:
                msg.note(JobEvent(job_id=job.id, state=current.status, percent=current.percent,
                                  message=current.error or ""))
        if msg.latest is not None:
            self._kick(job.id, msg)

    async def on_event(self, event: JobEvent) -> None:
        if event.publication is not None:  # a post to a platform: the job itself did not change
            await self._on_post(event)
            return
        msg = self.messages.get(event.job_id)
        if msg is None:
            if event.job_id in self.ignored or event.node_id not in (None, self.daemon.node_id):
                return  # another node's event: the node that made the job posts (or adopts) its message
            await self._adopt(event)
            msg = self.messages.get(event.job_id)  # adopted, restored, or claimed by a listener meanwhile
            if msg is None:
                if len(self.ignored) > 100_000:
                    self.ignored.clear()
                self.ignored.add(event.job_id)
                return
        if msg.done:
            return
        msg.note(event)
        if msg.ts is not None:  # else it is still being posted, and _post applies this once it exists
            self._kick(event.job_id, msg)

    # ---- publications: lines on the progress message, and the post's link in its thread ----------------

    async def show_post(self, pub: dict[str, Any], node_id: str | None = None) -> None:
        """Show a publication on its video's message, if this node shows that video (or did, before a restart)."""
        job_id = pub["job_id"]
        msg = self.messages.get(job_id)
        if msg is None and node_id in (None, self.daemon.node_id):
            msg = await self._restore(job_id)
        if msg is None or msg.ts is None:
            return
        known = msg.posts.get(pub["id"])
        if known and known["state"] in ("published", "failed") and pub["state"] not in ("published", "failed"):
            return  # a late progress tick never undoes the end
        msg.posts[pub["id"]] = pub
        if msg.posts_flusher is None or msg.posts_flusher.done():
            msg.posts_flusher = self.spawn(self._flush_posts(job_id, msg))
        if pub["state"] in ("published", "failed") and pub["id"] not in msg.announced:
            msg.announced.add(pub["id"])
            where = f"{pub['platform']} ({pub['account']})"
            said = (f":white_check_mark: Video {job_id} is published on {where}: {pub['url']}"
                    if pub["state"] == "published" else
                    f":x: Publishing video {job_id} to {where} failed: {pub.get('error') or 'no reason given'}")
            try:
                await self.client.chat_postMessage(channel=msg.channel, thread_ts=msg.ts, text=said)
            except SLACK_ERRORS as exc:
                log.warning("slack: the post of video %s on %s not told: %s", job_id, where, why(exc))

    async def _on_post(self, event: JobEvent) -> None:
        await self.show_post(event.publication or {}, event.node_id)

    async def _flush_posts(self, job_id: int, msg: Message) -> None:
        """The progress message with its posts' lines, edited at most once per interval, ending on the latest."""
        while True:
            wait = msg.last_sent + self.cfg.progress_interval_seconds - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            shown = dict(msg.posts)
            job = await self.daemon.store.job(job_id)
            if job is None:
                return
            state = job.status.value
            try:
                await self.client.chat_update(
                    channel=msg.channel, ts=msg.ts, text=f"{job.title}: {blocks.STATE_LABEL.get(state, state)}",
                    blocks=blocks.progress(_job(job), state, job.percent, "") + blocks.posts(list(shown.values())))
            except SLACK_ERRORS as exc:
                log.warning("slack: posts of video %s not shown: %s", job_id, why(exc))
            msg.last_sent = time.monotonic()
            if msg.posts == shown:
                return

    def _kick(self, job_id: int, msg: Message) -> None:
        if msg.flusher is None or msg.flusher.done():
            msg.flusher = self.spawn(self._flush(job_id, msg))

    async def _adopt(self, event: JobEvent) -> None:
        """Videos made by the inbox or a campaign report to the channel set for their source or campaign."""
        if await self._restore(event.job_id) or event.state is not JobState.queued:  # posted before a restart
            return
        job = await self.daemon.store.job(event.job_id)
        if job is None:
            return
        channel = None
        if job.campaign_id is not None:
            campaign = self.daemon.campaigns.by_id(job.campaign_id)
            channel = (campaign.notify.get("slack") or {}).get("channel") if campaign else None
        elif job.workspace_id is None and job.research_job_id is not None:
            research = await self.daemon.store.research_job(job.research_job_id)
            channel = self.cfg.source_channels.get(research.source if research else "", self.cfg.default_channel)
        if channel:
            self.follow(job, channel, None, None)

    async def _stored(self, job_id: int) -> dict[str, Any] | None:
        stored = await self.daemon.store.get_meta(f"slack.message.{job_id}")
        return json.loads(stored) if stored else None

    async def _restore(self, job_id: int) -> Message | None:
        data = await self._stored(job_id)
        if not data:
            return None
        msg = Message(data["channel"], data["ts"], data.get("team"), data.get("user"))
        msg.posted.set()
        return self.messages.setdefault(job_id, msg)  # a listener may have claimed it meanwhile

    async def _flush(self, job_id: int, msg: Message) -> None:
        """Edit the message at most once per interval, always ending on the latest state."""
        while True:
            wait = msg.last_sent + self.cfg.progress_interval_seconds - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            event = msg.latest
            job = await self.daemon.store.job(job_id)
            if job is None:
                return
            state = event.state.value
            try:
                await self.client.chat_update(
                    channel=msg.channel, ts=msg.ts, text=f"{job.title}: {blocks.STATE_LABEL.get(state, state)}",
                    blocks=blocks.progress(_job(job), state, event.percent, event.message))
            except SLACK_ERRORS as exc:
                log.warning("slack: progress of video %s not shown: %s", job_id, why(exc))
            msg.last_sent = time.monotonic()
            msg.sent.append(state)
            if state in FINAL:
                msg.done = True
                await self._finish(job, msg, state, event.message)
                return
            if msg.latest is event:
                return

    # ---- delivery ---------------------------------------------------------------------------------

    async def _finish(self, job: Any, msg: Message, state: str, message: str) -> None:
        try:
            if state == "completed":
                await self._deliver(job, msg)
            elif state in ("failed", "timeout"):
                await self.client.chat_postMessage(
                    channel=msg.channel, thread_ts=msg.ts, text=f"Video {job.id} {state}: {message}",
                    blocks=[{"type": "section", "text": blocks.text(
                        f":x: *Video {job.id} {blocks.STATE_LABEL[state].lower()}.* {message}", "mrkdwn")},
                        blocks.failed_actions(_job(job))])
        except SLACK_ERRORS as exc:
            log.warning("slack: delivering video %s failed: %s", job.id, why(exc))

    async def _deliver(self, job: Any, msg: Message) -> None:
        result = job.result or {}
        video = Path(result.get("video") or "")
        duration = result.get("duration") or 0
        title = f"{job.title} ({duration:.0f} s, {job.format})"
        avatars = self.avatars_for(msg.team, msg.user) if msg.team or msg.user else []
        download = f"{self.cfg.public_url.rstrip('/')}/videos/{job.id}/download" if self.cfg.public_url else None
        if video.is_file() and video.stat().st_size <= self.cfg.upload_limit_bytes:
            await self.client.files_upload_v2(channel=msg.channel, file=str(video), filename=f"video-{job.id}.mp4",
                                              title=title, initial_comment=f":clapper: {title}")
        else:  # too big to upload (or remote only): a link, with the thumbnail
            link = result.get("video_url") or download or str(video)
            await self.client.chat_postMessage(channel=msg.channel, text=f"{title}: {link}", blocks=[
                {"type": "section", "text": blocks.text(f":clapper: *{title}*\n<{link}|Watch or download>", "mrkdwn")}])
            thumbnail = Path(result.get("thumbnail") or "")
            if thumbnail.is_file():
                await self.client.files_upload_v2(channel=msg.channel, file=str(thumbnail), title=f"{job.title}")
        script = await self.daemon.jobs.script_for(job)
        text = script.text if script else ""
        page = "\n".join(x for x in (script.description, " ".join(script.hashtags)) if x) if script else ""
        shown = f"*Script*\n{text[:2900 - min(len(page), 700)]}" + (f"\n\n*Description*\n{page[:690]}" if page else "")
        await self.client.chat_postMessage(channel=msg.channel, thread_ts=msg.ts, text=text[:3000] or job.title,
                                           blocks=[{"type": "section", "text": blocks.text(shown, "mrkdwn")},
                                                   blocks.finished_actions(_job(job), avatars, download,
                                                                           self._platforms())])
        extras = [{"file": result[k], "title": Path(result[k]).name} for k in ("srt", "metadata")
                  if result.get(k) and Path(result[k]).is_file()]
        if extras:
            await self.client.files_upload_v2(channel=msg.channel, thread_ts=msg.ts, file_uploads=extras)

    def _platforms(self) -> dict[str, list[str]]:
        publishing = getattr(self.daemon, "publishing", None)
        return publishing.platforms() if publishing is not None else {}

    async def drain(self) -> None:
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)


def _job(job: Any) -> dict[str, Any]:
    return {"id": job.id, "title": job.title, "format": job.format, "avatar_id": job.avatar_id,
            "renderer": job.renderer}
