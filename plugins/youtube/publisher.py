"""The YouTube publisher: each account's OAuth token, the resumable upload, and the Data API's lookups."""

from __future__ import annotations

from typing import Any, Callable

import aiohttp

from avatar_daemon import (
    AccessTokens, Account, ConfigError, Figures, GaveUp, Posted, PublishError, TryAgain, Upload, retrying,
)

from .api import Answer, GoogleApi, refresh_google
from .resource import video_resource
from .resumable import DONE, ResumableUpload
from .settings import YouTubeSettings

BATCH = 50
"""videos.list takes at most 50 ids a call."""
FAILED = {"rejected": "rejectionReason", "failed": "failureReason"}


class YouTubePublisher:
    name = "youtube"

    def __init__(self, cfg: YouTubeSettings, clock: Callable):
        self.cfg = cfg
        self.clock = clock
        self._tokens = AccessTokens("YouTube", self._refresh)

    def _api(self, account: Account, http: aiohttp.ClientSession) -> GoogleApi:
        token = self._tokens(account, http)
        return GoogleApi(http, token, token.what)

    async def _refresh(self, account: Account, http: aiohttp.ClientSession, kept: dict, what: str) -> tuple[str, float]:
        try:
            secrets = [account.secret(k) for k in ("client_id", "client_secret", "refresh_token")]
        except ConfigError as exc:
            raise PublishError(f"{what}: {exc}") from None
        return await refresh_google(http, self.cfg.token_url, *secrets, what=what,
                                    timeout=self.cfg.request_timeout_seconds)

    async def publish(self, upload: Upload, http: aiohttp.ClientSession) -> Posted:
        api = self._api(upload.account, http)
        known = upload.state.get("video_id")
        if known:
            # Uploaded on an earlier attempt that ended before the publication was recorded:
            # YouTube has it already, so look it up instead of posting it twice.
            found = await self._videos(api, [str(known)], "status")
            if str(known) not in found:
                raise PublishError(f"{api.what}: video {known}, uploaded on an earlier attempt, is no longer on "
                                   "the channel; not uploading it again (publish it anew to post it)")
            return self._posted(api, upload, found[str(known)])
        resource = video_resource(upload.video, upload.options, synthetic=self.cfg.contains_synthetic_media,
                                  category=self.cfg.category)
        video = await ResumableUpload(api, self.cfg, upload, resource, self.clock).run()
        video_id = video.get("id")
        if not isinstance(video_id, str) or not video_id:
            # The next attempt asks the saved session again, which answers with the video once more.
            raise TryAgain(f"{api.what}: YouTube finished the upload but its answer carried no video id")
        await upload.save("processing", video_id=video_id)
        upload.progress(100.0, "uploaded to YouTube")
        return self._posted(api, upload, video)

    def _posted(self, api: GoogleApi, upload: Upload, video: dict[str, Any]) -> Posted:
        status = video.get("status") if isinstance(video.get("status"), dict) else {}
        upload_status = status.get("uploadStatus")
        if upload_status in FAILED:
            why = status.get(FAILED[upload_status]) or "no reason given"
            raise PublishError(f"{api.what}: YouTube {upload_status} video {video['id']} ({why})")
        if upload_status == "deleted":
            raise PublishError(f"{api.what}: video {video['id']} was deleted from the channel")
        # No API flag makes a Short: YouTube decides from the shape and length, and shows it at /shorts/.
        url = (f"https://youtube.com/shorts/{video['id']}" if upload.video.is_short
               else f"https://www.youtube.com/watch?v={video['id']}")
        return Posted(remote_id=video["id"], url=url)

    async def check(self, account: Account, http: aiohttp.ClientSession) -> str:
        api = self._api(account, http)
        try:
            answer = await self._get(api, "channels", {"part": "snippet", "mine": "true"})
        except TryAgain as exc:
            raise PublishError(str(exc)) from None
        if answer.status not in DONE:
            raise api.refused(answer, "to list the account's channel (the refresh token needs the youtube.readonly "
                                      "or youtube scope for this; youtube.upload alone only uploads)")
        items = answer.json(f"{api.what}: channels.list").get("items") or []
        if not items:
            raise PublishError(f"{api.what}: the credentials work but reach no YouTube channel "
                               "(create the channel on youtube.com with that Google account)")
        channel = items[0]
        title = (channel.get("snippet") or {}).get("title") or "?"
        return f'channel "{title}" ({channel.get("id")})'

    async def figures(self, account: Account, remote_ids: list[str], http: aiohttp.ClientSession) -> dict[str, Figures]:
        api = self._api(account, http)
        found = await self._videos(api, list(dict.fromkeys(remote_ids)), "statistics")
        out = {}
        for video_id, video in found.items():
            stats = video.get("statistics") or {}
            out[video_id] = Figures(views=_count(stats.get("viewCount")), likes=_count(stats.get("likeCount")),
                                    comments=_count(stats.get("commentCount")))
        return out

    async def _get(self, api: GoogleApi, resource: str, params: dict[str, str]) -> Answer:
        """A Data API read, retried; TryAgain once the retries are spent."""
        url, cfg = f"{self.cfg.api_url}/{resource}", self.cfg
        try:
            return await retrying(lambda: api.call("GET", url, params=params, timeout=cfg.request_timeout_seconds),
                                  retries=cfg.retries, base_delay=cfg.backoff_seconds)
        except GaveUp as exc:
            raise TryAgain(exc.reason) from None

    async def _videos(self, api: GoogleApi, ids: list[str], part: str) -> dict[str, dict[str, Any]]:
        """videos.list for these ids, 50 a call: the ones YouTube still knows, by id."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), BATCH):
            batch = ids[start:start + BATCH]
            answer = await self._get(api, "videos", {"part": part, "id": ",".join(batch), "maxResults": str(BATCH)})
            if answer.status not in DONE:
                raise api.refused(answer, "to list videos")
            for item in answer.json(f"{api.what}: videos.list").get("items") or []:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    found[item["id"]] = item
        return found


def _count(value: Any) -> int:
    """YouTube sends counts as strings, and leaves out the ones a channel hides."""
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0
