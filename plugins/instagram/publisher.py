"""Posting Reels through the Instagram Graph API's resumable flow: container, rupload, status, media_publish.

The container id is saved the moment Meta gives it, the upload's completion and the media id too,
so an attempt that dies resumes where it stopped: a saved container is always asked for its
``status_code`` first, and ``PUBLISHED`` means the post is looked up, never published again.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any, Callable

import aiohttp

from avatar_daemon import AccessTokens, Account, ConfigError, Figures, Posted, PublishError, QuotaWait, TryAgain, Upload

from .._captions import caption
from . import graph
from .settings import InstagramSettings

CAPTION_LIMIT = 2200
METRICS = {"views": "views", "likes": "likes", "comments": "comments"}


class InstagramPublisher:
    name = "instagram"

    def __init__(self, cfg: InstagramSettings, clock: Callable):
        self.cfg = cfg
        self.clock = clock
        self._tokens = AccessTokens("Instagram", lambda account, http, kept, what:
                                    graph.refresh(cfg, http, account, what, kept))

    def __repr__(self) -> str:
        return f"InstagramPublisher({self.cfg.graph_url!r})"

    def _graph(self, account: Account, http: aiohttp.ClientSession) -> graph.Graph:
        return graph.Graph(self.cfg, http, self._tokens(account, http), self.clock)

    # ---- Publisher --------------------------------------------------------------------

    async def check(self, account: Account, http: aiohttp.ClientSession) -> str:
        g = self._graph(account, http)
        user = _user_id(account)
        me = await g.call("GET", user, params={"fields": "username"}, doing="reading the account")
        limit = await self._limit(g, user)
        return (f"Instagram @{me.get('username')} ({user}), {limit[0]} of {limit[1]} posts used "
                "in the last 24 hours")

    async def figures(self, account: Account, remote_ids: list[str],
                      http: aiohttp.ClientSession) -> dict[str, Figures]:
        g = self._graph(account, http)
        found: dict[str, Figures] = {}
        for media_id in remote_ids:
            try:
                answer = await g.call("GET", f"{media_id}/insights", params={"metric": ",".join(METRICS)},
                                      doing=f"reading the figures of {media_id}")
            except graph.GraphError as exc:
                if exc.code == 100:  # Meta no longer knows the post (deleted): leave it out
                    continue
                raise
            counts = {item.get("name"): _value(item) for item in answer.get("data") or [] if isinstance(item, dict)}
            found[media_id] = Figures(**{ours: counts.get(theirs, 0) for theirs, ours in METRICS.items()})
        return found

    async def publish(self, upload: Upload, http: aiohttp.ClientSession) -> Posted:
        g = self._graph(upload.account, http)
        user = _user_id(upload.account)
        if upload.options.privacy != "public":
            raise PublishError(f"{g.what}: Instagram has no {upload.options.privacy} Reels (a professional "
                               "account's posts are public), so this one was not posted; set privacy: public "
                               "for Instagram to post it")
        if upload.state.get("container_id"):
            status = await self._status(g, upload.state["container_id"])
            code = status.get("status_code")
            if code == "PUBLISHED":
                return await self._posted(g, upload, user)
            if code == "EXPIRED":  # never published within 24 h: Meta dropped it, so make another
                await upload.save(container_id=None, upload_uri=None, uploaded=False, upload_started=False)
            elif code == "ERROR":
                raise PublishError(f"{g.what}: Instagram could not process the video: {status.get('status') or 'ERROR'}")
            elif code == "FINISHED" and not upload.state.get("uploaded"):
                await upload.save(uploaded=True)
        if not upload.state.get("container_id"):
            await self._wait_for_quota(g, user)
            await self._create(g, upload, user)
        if not upload.state.get("uploaded"):
            await self._send(g, upload)
        await self._wait(g, upload)
        if not upload.state.get("media_id"):
            await self._wait_for_quota(g, user)
            answer = await g.call("POST", f"{user}/media_publish", params={"creation_id": upload.state["container_id"]},
                                  doing="publishing the Reel")
            if not answer.get("id"):
                raise TryAgain(f"{g.what}: media_publish answered without a media id")
            await upload.save(media_id=str(answer["id"]))
        return await self._posted(g, upload, user)

    # ---- steps ----------------------------------------------------------------------------

    async def _limit(self, g: graph.Graph, user: str) -> tuple[int, int]:
        answer = await g.call("GET", f"{user}/content_publishing_limit", params={"fields": "quota_usage,config"},
                              doing="reading the publishing limit")
        row = (answer.get("data") or [{}])[0]
        config = row.get("config") or {}
        return int(row.get("quota_usage") or 0), int(config.get("quota_total") or 0)

    async def _wait_for_quota(self, g: graph.Graph, user: str) -> None:
        """QuotaWait when the rolling 24 hours hold ``quota_total`` posts already: until the oldest of them
        leaves the window (the recent posts' timestamps say when), else ``quota_wait_seconds`` ahead.
        (Posts made in the app count in the list but not in the limit: waking early only looks again.)"""
        used, total = await self._limit(g, user)
        if not total or used < total:
            return
        now = self.clock()
        until = now + timedelta(seconds=self.cfg.quota_wait_seconds)
        recent = await g.call("GET", f"{user}/media", params={"fields": "timestamp", "limit": str(total)},
                              doing="reading when the recent posts were made")
        stamps = [_when(m.get("timestamp")) for m in recent.get("data") or [] if isinstance(m, dict)]
        stamps = [s for s in stamps if s is not None]
        if len(stamps) >= total:
            frees = min(stamps[:total]) + timedelta(hours=24)
            if frees > now:
                until = frees
        raise QuotaWait(until, f"{g.what}: Instagram's publishing limit is used up ({used} of {total} posts "
                               "in the last 24 hours)")

    async def _create(self, g: graph.Graph, upload: Upload, user: str) -> None:
        video, extra = upload.video, upload.options.extra
        text = caption(video.title, video.description, video.hashtags, CAPTION_LIMIT)
        params = {"media_type": "REELS", "upload_type": "resumable", "caption": text,
                  "share_to_feed": "true" if extra.get("share_to_feed", self.cfg.share_to_feed) else "false"}
        if "thumb_offset_ms" in extra:
            params["thumb_offset"] = str(int(extra["thumb_offset_ms"]))
        answer = await g.call("POST", f"{user}/media", params=params, doing="creating the Reel's container")
        container = answer.get("id")
        if not container:
            raise TryAgain(f"{g.what}: Instagram's container answer had no id")
        uri = answer.get("uri") or f"{self.cfg.rupload_url.rstrip('/')}/ig-api-upload/{self.cfg.api_version}/{container}"
        await upload.save("uploading", container_id=str(container), upload_uri=uri, uploaded=False, caption=text,
                          created_at=self.clock().isoformat())

    async def _send(self, g: graph.Graph, upload: Upload) -> None:
        uri, size = upload.state["upload_uri"], upload.video.size
        offset = 0
        if upload.state.get("upload_started"):  # an earlier attempt sent some: ask how much arrived
            offset = await self._received(g, upload.state["container_id"])
        if offset < size:
            await upload.save(upload_started=True)
            headers = {"offset": str(offset), "file_size": str(size), "Content-Type": "application/octet-stream",
                       "Content-Length": str(size - offset)}
            answer = await g.rupload(uri, headers=headers, data=upload.read(offset, size, sending_to="Instagram"),
                                     doing=f"sending the video from byte {offset}")
            if answer.get("success") is False:
                raise TryAgain(f"{g.what}: Instagram's upload host did not take the video ({answer.get('message')})")
        await upload.save("processing", uploaded=True)

    async def _received(self, g: graph.Graph, container: str) -> int:
        """The bytes of the video Meta holds for ``container``: Graph's
        ``video_status.uploading_phase.bytes_transferred`` (read so in Meta's own Reels sample,
        fbsamples/reels_publishing_apis), the offset the next POST starts from; 0, the whole file
        again, when Graph does not say."""
        answer = await g.call("GET", container, params={"fields": "video_status"},
                              doing="asking how much of the video arrived")
        video_status = answer.get("video_status") if isinstance(answer.get("video_status"), dict) else {}
        phase = video_status.get("uploading_phase") if isinstance(video_status.get("uploading_phase"), dict) else {}
        return max(0, _int(phase.get("bytes_transferred"), 0))

    async def _status(self, g: graph.Graph, container: str) -> dict[str, Any]:
        return await g.call("GET", container, params={"fields": "status_code,status"},
                            doing="asking how the Reel's processing is going")

    async def _wait(self, g: graph.Graph, upload: Upload) -> None:
        deadline = time.monotonic() + self.cfg.processing_deadline_seconds
        pause = self.cfg.poll_first_seconds
        while True:
            status = await self._status(g, upload.state["container_id"])
            code = status.get("status_code")
            if code in ("FINISHED", "PUBLISHED"):
                return
            if code == "ERROR":
                raise PublishError(f"{g.what}: Instagram could not process the video: {status.get('status') or 'ERROR'}")
            if code == "EXPIRED":
                await upload.save(container_id=None, upload_uri=None, uploaded=False, upload_started=False)
                raise TryAgain(f"{g.what}: the Reel's container expired before it was published; making a new one")
            upload.progress(95.0, f"Instagram is processing the video ({code})")
            if time.monotonic() + pause > deadline:
                raise TryAgain(f"{g.what}: Instagram is still processing the video after "
                               f"{self.cfg.processing_deadline_seconds:.0f} s; looking again later")
            await asyncio.sleep(pause)
            pause = min(max(pause, 0.05) * self.cfg.poll_factor, self.cfg.poll_max_interval_seconds)

    async def _posted(self, g: graph.Graph, upload: Upload, user: str) -> Posted:
        media_id = upload.state.get("media_id") or await self._find(g, upload, user)
        answer = await g.call("GET", media_id, params={"fields": "permalink"}, doing="reading the Reel's link")
        upload.progress(100.0, "published on Instagram")
        return Posted(remote_id=media_id, url=answer.get("permalink"))

    async def _find(self, g: graph.Graph, upload: Upload, user: str) -> str:
        """The media a container became when media_publish's answer was lost: the recent post with our
        caption made after the container was."""
        recent = await g.call("GET", f"{user}/media", params={"fields": "id,caption,timestamp", "limit": "25"},
                              doing="looking for the published Reel")
        since = _when(upload.state.get("created_at"))
        for media in recent.get("data") or []:
            made = _when(media.get("timestamp"))
            if media.get("caption") == upload.state.get("caption") and (since is None or made is None
                                                                        or made >= since - timedelta(minutes=5)):
                await upload.save(media_id=str(media["id"]))
                return str(media["id"])
        raise PublishError(f"{g.what}: Instagram says container {upload.state.get('container_id')} is published "
                           "but its post is not among the account's recent media; look for it in the app")


def _user_id(account: Account) -> str:
    user = account.settings.get("ig_user_id")
    if not user:
        raise ConfigError([f"publishing.accounts.{account.name}.ig_user_id: missing (the Instagram professional "
                           "account's id, from GET /me/accounts?fields=instagram_business_account)"])
    return str(user)


def _value(item: dict[str, Any]) -> int:
    values = item.get("values") or [{}]
    return _int(values[0].get("value"), 0) if isinstance(values[0], dict) else 0


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _when(value: Any) -> datetime | None:
    """Graph's timestamps (``2026-12-02T07:00:00+0000``) and our own ISO ones."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("+0000", "+00:00"))
    except ValueError:
        return None
