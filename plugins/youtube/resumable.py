"""YouTube's resumable upload protocol, step by step, saving what the server confirms as it goes.

The session URI is saved the moment Google hands it out and the confirmed offset after every
chunk, so a restart (or another node) asks the session where it got to (`bytes */N`) and
carries on from there. The server's `Range` is the only truth about what landed: a chunk that
went out whole may have been cut short, and a chunk whose answer was lost may have arrived.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Callable

from avatar_daemon import GaveUp, PublishError, TryAgain, Upload, retrying

from .api import Answer, GoogleApi
from .limits import quota_wait
from .settings import QUANTUM, YouTubeSettings

log = logging.getLogger(__name__)
_RANGE = re.compile(r"^\s*bytes=0-(\d+)\s*$")
DONE = (200, 201)
RESUME_INCOMPLETE = 308
SESSION_GONE = (404, 410)
MAX_SESSIONS = 3
"""New sessions one attempt may start after expired ones before it stops asking."""


class ResumableUpload:
    def __init__(self, api: GoogleApi, cfg: YouTubeSettings, upload: Upload, resource: dict[str, Any],
                 clock: Callable):
        self.api = api
        self.cfg = cfg
        self.upload = upload
        self.resource = resource
        self.clock = clock
        self.video = upload.video
        self.total = upload.video.size
        self.uri: str | None = upload.state.get("session_uri")
        if upload.state.get("total") not in (None, self.total):
            self.uri = None  # the file changed since that session began (rendered again): a new one
        self.offset = int(upload.state.get("offset") or 0)
        self.unsure = self.uri is not None  # a saved session: ask it where it got to before sending anything
        self.sessions = 0

    async def run(self) -> dict[str, Any]:
        """Send the file; the video resource YouTube answers with once the last byte has landed."""
        self._check_file()
        while True:
            try:
                video = await retrying(self._step, retries=self.cfg.retries, base_delay=self.cfg.backoff_seconds)
            except GaveUp as exc:
                # Handed back to the core, to be retried later from the saved session and offset.
                raise TryAgain(exc.reason) from None
            if video is not None:
                return video

    async def _step(self) -> dict[str, Any] | None:
        """One request's worth of progress; the video when the upload is complete."""
        if self.uri is None:
            await self._start()
        if self.unsure:
            video = await self._ask_offset()
            if video is not None:
                return video
            if self.uri is None:  # the session expired: a new one, from the first byte
                await self._start()
        return await self._send_chunk()

    async def _start(self) -> None:
        self.sessions += 1
        if self.sessions > MAX_SESSIONS:
            raise TryAgain(f"{self.api.what}: YouTube expired {MAX_SESSIONS} upload sessions in a row")
        body = json.dumps(self.resource).encode()
        params = {"uploadType": "resumable", "part": "snippet,status",
                  "notifySubscribers": "true" if self.upload.options.notify_subscribers else "false"}
        headers = {"Content-Type": "application/json; charset=UTF-8", "X-Upload-Content-Length": str(self.total),
                   "X-Upload-Content-Type": self.video.mime}
        answer = await self.api.call("POST", self.cfg.upload_url, params=params, headers=headers, data=body,
                                     timeout=self.cfg.request_timeout_seconds)
        if answer.status not in DONE:
            raise self._refusal(answer, "the upload")
        uri = answer.headers.get("Location")
        if not uri:
            raise TryAgain(f"{self.api.what}: YouTube started an upload session without a Location header")
        self.uri, self.offset, self.unsure = uri, 0, False
        await self.upload.save("uploading", session_uri=uri, offset=0, total=self.total)
        self._progress()

    async def _ask_offset(self) -> dict[str, Any] | None:
        """Where the session got to (Step 4.1 of Google's guide); the video if it already has every byte."""
        assert self.uri is not None
        answer = await self.api.call("PUT", self.uri, data=b"",
                                     headers={"Content-Range": f"bytes */{self.total}", "Content-Length": "0"},
                                     timeout=self.cfg.request_timeout_seconds)
        if answer.status in DONE:
            return answer.json(f"{self.api.what}: the finished upload")
        if answer.status in SESSION_GONE:
            log.info("publication %s: %s: the upload session expired; starting a new one from the first byte",
                     self.upload.publication_id, self.api.what)
            self.uri, self.offset = None, 0
            return None
        if answer.status != RESUME_INCOMPLETE:
            raise self._refusal(answer, "resuming the upload")
        await self._confirmed(answer)
        log.info("publication %s: %s: resuming the upload at byte %d of %d", self.upload.publication_id,
                 self.api.what, self.offset, self.total)
        return None

    async def _send_chunk(self) -> dict[str, Any] | None:
        assert self.uri is not None
        first = self.offset
        size = min(self.cfg.chunk_size, self.total - first)
        last = first + size - 1
        self.unsure = True  # until the server says how much of this chunk it kept
        answer = await self.api.call("PUT", self.uri, data=lambda: self.upload.read(first, first + size, QUANTUM),
                                     headers={"Content-Type": self.video.mime, "Content-Length": str(size),
                                              "Content-Range": f"bytes {first}-{last}/{self.total}"},
                                     timeout=self.cfg.chunk_timeout_seconds)
        if answer.status in DONE:
            self.unsure = False
            return answer.json(f"{self.api.what}: the finished upload")
        if answer.status in SESSION_GONE:
            self.uri, self.offset, self.unsure = None, 0, False
            return None
        if answer.status != RESUME_INCOMPLETE:
            raise self._refusal(answer, "a chunk of the upload")
        await self._confirmed(answer)
        return None

    async def _confirmed(self, answer: Answer) -> None:
        """Take the server's Range as the offset (no Range: nothing landed) and save it."""
        match = _RANGE.match(answer.headers.get("Range", ""))
        offset = int(match.group(1)) + 1 if match else 0
        if offset > self.total:
            raise PublishError(f"{self.api.what}: YouTube claims {offset} bytes of a {self.total}-byte file")
        self.offset, self.unsure = offset, False
        await self.upload.save("uploading", offset=offset)
        self._progress()

    def _refusal(self, answer: Answer, doing: str) -> Exception:
        wait = quota_wait(answer.reasons(), self.clock(), self.api.what) if answer.status in (400, 403) else None
        return wait or self.api.refused(answer, doing)

    def _progress(self) -> None:
        mb = 1024 * 1024
        self.upload.progress(100.0 * self.offset / self.total,
                             f"uploading to YouTube: {self.offset / mb:.1f} of {self.total / mb:.1f} MB")

    def _check_file(self) -> None:
        try:
            size = self.video.path.stat().st_size
        except OSError as exc:
            raise PublishError(f"video {self.video.job_id}: its file cannot be read ({exc.strerror})") from None
        if size != self.total or size == 0:
            raise PublishError(f"video {self.video.job_id}: its file has {size} bytes, not the {self.total} "
                               "recorded when it finished; render it again")
