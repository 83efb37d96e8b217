"""Posting to TikTok through the Content Posting API: creator info, init, chunked FILE_UPLOAD, status.

Every fact is saved the moment TikTok gives it (publish_id, upload_url, each confirmed chunk), so an
attempt that dies resumes: a saved publish_id is always looked up with ``status/fetch`` before any new
``init``, and a post TikTok already has is never made twice.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import aiohttp

from avatar_daemon import AccessTokens, Account, Figures, Posted, PublishError, TryAgain, Upload

from .._captions import caption
from . import api, chunks
from .settings import TikTokSettings

PRIVACY = {"private": "SELF_ONLY", "unlisted": "MUTUAL_FOLLOW_FRIENDS", "public": "PUBLIC_TO_EVERYONE"}
LEVELS = {"PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR", "SELF_ONLY"}
CAPTION_LIMIT = 2200
PROCESSING = {"PROCESSING_UPLOAD", "PROCESSING_DOWNLOAD"}


class TikTokPublisher:
    name = "tiktok"

    def __init__(self, cfg: TikTokSettings, clock: Callable):
        self.cfg = cfg
        self.clock = clock
        self._tokens = AccessTokens("TikTok", lambda account, http, kept, what:
                                    api.refresh(cfg, http, account, what, kept))

    def __repr__(self) -> str:
        return f"TikTokPublisher({self.cfg.base_url!r})"

    def _api(self, account: Account, http: aiohttp.ClientSession) -> api.TikTokApi:
        return api.TikTokApi(self.cfg, http, self._tokens(account, http), self.clock)

    # ---- Publisher --------------------------------------------------------------------

    async def check(self, account: Account, http: aiohttp.ClientSession) -> str:
        info = await self._creator(self._api(account, http))
        options = ", ".join(info.get("privacy_level_options") or []) or "nothing"
        return f"TikTok @{info.get('creator_username')} ({info.get('creator_nickname')}), may post {options}"

    async def figures(self, account: Account, remote_ids: list[str],
                      http: aiohttp.ClientSession) -> dict[str, Figures]:
        ids = [i for i in remote_ids if i.isdigit()]  # a publish_id (a private post) has no figures
        client = self._api(account, http)
        found: dict[str, Figures] = {}
        for start in range(0, len(ids), 20):  # video/query takes 20 ids a call
            data = await client.call("/v2/video/query/", {"filters": {"video_ids": ids[start:start + 20]}},
                                     params={"fields": "id,view_count,like_count,comment_count"},
                                     doing="reading the videos' figures")
            for video in data.get("videos") or []:
                found[str(video.get("id"))] = Figures(views=int(video.get("view_count") or 0),
                                                      likes=int(video.get("like_count") or 0),
                                                      comments=int(video.get("comment_count") or 0))
        return found

    async def publish(self, upload: Upload, http: aiohttp.ClientSession) -> Posted:
        client = self._api(upload.account, http)
        if upload.state.get("publish_id"):
            status = await self._status(client, upload.state["publish_id"])
            done = self._finished(upload, status)
            if done is not None:
                return done
            if status.get("status") == "FAILED" and not self._all_sent(upload.state):
                # The upload never finished (its URL expired with the crash): TikTok has nothing to post.
                await upload.save(publish_id=None, upload_url=None, chunks_done=0)
            elif status.get("status") == "FAILED":
                raise PublishError(f"{client.what}: TikTok could not post the video: "
                                   f"{status.get('fail_reason') or 'no reason given'}")
            elif not self._all_sent(upload.state) and status.get("uploaded_bytes") == upload.state.get("video_size"):
                # The last chunk arrived but the crash came before it was saved: sending it again is refused.
                await upload.save("processing", chunks_done=upload.state["total_chunk_count"])
        if not upload.state.get("publish_id"):
            await self._init(upload, client)
        if not self._all_sent(upload.state):
            await self._send(upload, client)
        return await self._wait(upload, client)

    # ---- steps ----------------------------------------------------------------------------

    async def _creator(self, client: api.TikTokApi) -> dict[str, Any]:
        return await client.call("/v2/post/publish/creator_info/query/", {}, doing="reading the creator's info",
                                 limit="20 creator_info queries a minute")

    async def _init(self, upload: Upload, client: api.TikTokApi) -> None:
        video, options = upload.video, upload.options
        inbox = options.extra.get("mode") == "inbox"
        plan = chunks.plan(video.size, self.cfg.chunk_bytes)
        source = {"source": "FILE_UPLOAD", "video_size": plan.video_size, "chunk_size": plan.chunk_size,
                  "total_chunk_count": plan.total_chunk_count}
        facts: dict[str, Any] = {"mode": "inbox" if inbox else "direct"}
        if inbox:
            data = await client.call("/v2/post/publish/inbox/video/init/", {"source_info": source},
                                     doing="starting the upload to the inbox", limit="6 upload inits a minute")
        else:
            info = await self._creator(client)
            level = self._privacy(client, info, options)
            limit = info.get("max_video_post_duration_sec")
            if isinstance(limit, (int, float)) and video.duration > limit:
                raise PublishError(f"{client.what}: the video is {video.duration:.0f} s long and "
                                   f"@{info.get('creator_username')} may post at most {limit} s")
            post_info = {"title": caption(video.title, video.description, video.hashtags, CAPTION_LIMIT), "privacy_level": level,
                         "disable_comment": bool(options.extra.get("disable_comment", False)),
                         "disable_duet": bool(options.extra.get("disable_duet", False)),
                         "disable_stitch": bool(options.extra.get("disable_stitch", False)),
                         # A talking avatar is AI-generated content: TikTok labels it so when told.
                         "is_aigc": bool(options.extra.get("is_aigc", True)),
                         "brand_content_toggle": bool(options.extra.get("brand_content", False)),
                         "brand_organic_toggle": bool(options.extra.get("brand_organic", False))}
            if "cover_timestamp_ms" in options.extra:
                post_info["video_cover_timestamp_ms"] = int(options.extra["cover_timestamp_ms"])
            data = await client.call("/v2/post/publish/video/init/", {"post_info": post_info, "source_info": source},
                                     doing="starting the post", limit="6 post inits a minute")
            facts.update(username=info.get("creator_username"), privacy_level=level)
        publish_id, upload_url = data.get("publish_id"), data.get("upload_url")
        if not publish_id or not upload_url:
            raise TryAgain(f"{client.what}: TikTok's init answer had no publish_id or upload_url")
        await upload.save("uploading", publish_id=publish_id, upload_url=upload_url, chunk_size=plan.chunk_size,
                          total_chunk_count=plan.total_chunk_count, video_size=plan.video_size, chunks_done=0,
                          **facts)

    def _privacy(self, client: api.TikTokApi, info: dict[str, Any], options) -> str:
        level = str(options.extra.get("privacy_level") or PRIVACY[options.privacy])
        if level not in LEVELS:
            raise PublishError(f"{client.what}: {level!r} is not a TikTok privacy level "
                               f"(one of {', '.join(sorted(LEVELS))})")
        allowed = info.get("privacy_level_options") or []
        if level not in allowed:
            raise PublishError(f"{client.what}: @{info.get('creator_username')} cannot post {level} "
                               f"(TikTok allows {', '.join(allowed) or 'nothing'} for this creator; "
                               "an app TikTok has not audited posts SELF_ONLY only)")
        return level

    def _all_sent(self, state: dict[str, Any]) -> bool:
        return bool(state.get("total_chunk_count")) and state.get("chunks_done", 0) >= state["total_chunk_count"]

    async def _send(self, upload: Upload, client: api.TikTokApi) -> None:
        state = upload.state
        plan = chunks.ChunkPlan(state["video_size"], state["chunk_size"], state["total_chunk_count"])
        if plan.video_size != upload.video.size:
            raise PublishError(f"{client.what}: the video file changed size since its upload began "
                               f"({plan.video_size} bytes then, {upload.video.size} now)")
        timeout = aiohttp.ClientTimeout(total=self.cfg.chunk_timeout_seconds, connect=10.0)
        for index in range(state.get("chunks_done", 0), plan.total_chunk_count):
            first, end = plan.span(index)
            headers = {"Content-Type": upload.video.mime, "Content-Length": str(end - first),
                       "Content-Range": f"bytes {first}-{end - 1}/{plan.video_size}"}
            try:
                async with client.http.put(state["upload_url"], data=upload.read(first, end, sending_to="TikTok"),
                                           headers=headers, timeout=timeout) as resp:
                    status, body = resp.status, await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TryAgain(f"{client.what}: chunk {index + 1} of {plan.total_chunk_count} did not reach "
                               f"TikTok ({type(exc).__name__})") from None
            if status >= 500:
                raise TryAgain(f"{client.what}: TikTok answered HTTP {status} to chunk {index + 1}")
            if status in (403, 404, 410):
                # The upload URL has expired (they last an hour): this post can never finish. Start again.
                await upload.save(publish_id=None, upload_url=None, chunks_done=0)
                raise TryAgain(f"{client.what}: TikTok's upload URL expired (HTTP {status}); starting a new upload")
            if status not in (201, 206):
                code, message = api.error_of(api.json_of(body))
                raise PublishError(f"{client.what}: TikTok refused chunk {index + 1} of {plan.total_chunk_count} "
                                   f"(HTTP {status}{', ' + code if code else ''}{': ' + message if message else ''})")
            await upload.save(chunks_done=index + 1)
        await upload.save("processing")

    async def _status(self, client: api.TikTokApi, publish_id: str) -> dict[str, Any]:
        return await client.call("/v2/post/publish/status/fetch/", {"publish_id": publish_id},
                                 doing="asking how the post is going")

    async def _wait(self, upload: Upload, client: api.TikTokApi) -> Posted:
        deadline = time.monotonic() + self.cfg.processing_deadline_seconds
        pause = self.cfg.poll_first_seconds
        while True:
            status = await self._status(client, upload.state["publish_id"])
            done = self._finished(upload, status)
            if done is not None:
                return done
            if status.get("status") == "FAILED":
                raise PublishError(f"{client.what}: TikTok could not post the video: "
                                   f"{status.get('fail_reason') or 'no reason given'}")
            if status.get("status") not in PROCESSING:
                raise TryAgain(f"{client.what}: TikTok reported an unknown status {status.get('status')!r}")
            upload.progress(95.0, f"TikTok is processing the video ({status.get('status')})")
            if time.monotonic() + pause > deadline:
                raise TryAgain(f"{client.what}: TikTok is still processing the video after "
                               f"{self.cfg.processing_deadline_seconds:.0f} s; looking again later")
            await asyncio.sleep(pause)
            pause = min(max(pause, 0.05) * self.cfg.poll_factor, self.cfg.poll_max_interval_seconds)

    def _finished(self, upload: Upload, status: dict[str, Any]) -> Posted | None:
        state = upload.state
        if status.get("status") == "SEND_TO_USER_INBOX":
            upload.progress(100.0, "the video is in the creator's TikTok inbox: they finish the post in the TikTok app")
            return Posted(remote_id=state["publish_id"])
        if status.get("status") != "PUBLISH_COMPLETE":
            return None
        ids = [str(i) for i in status.get("publicaly_available_post_id") or []]  # (TikTok's spelling)
        if not ids:  # a private post has no public id: keep the publish_id
            return Posted(remote_id=state["publish_id"])
        user = state.get("username")
        return Posted(remote_id=ids[0], url=f"https://www.tiktok.com/@{user}/video/{ids[0]}" if user else None)
