"""A video platform on 127.0.0.1 with a resumable upload, and the test plugin's publisher for it.

The upload follows YouTube's resumable protocol (reference/publishing.md 2.1): a POST with the
metadata starts a session and answers its URI in `Location`; PUTs carry `Content-Range:
bytes a-b/total` and are answered `308` with `Range: bytes=0-N` (what landed) until the last,
which answers `201` with the video; `Content-Range: bytes */total` asks where a session got
to. Limits answer `403` with `reason: quotaExceeded`, refusals `400` with the reason, and a
test may hold a chunk (`hold_chunk`) to see a node lose its claim mid-upload.

`LoopbackPublisher` is a real `Publisher` for it, written the way a platform plugin is: it
resumes from what it saved, and one that got the platform's id looks the video up instead of
posting again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, AsyncIterator

import aiohttp
from aiohttp import web

from avatar_daemon import Figures, Posted, PublishError, QuotaWait, TryAgain, hookimpl, retry_after


@dataclass
class FakePlatform:
    token: str = "access-token-1"
    quota_refusals: int = 0                     # session starts answered 403 quotaExceeded
    quota_reset: datetime | None = None
    refuse: str | None = None                   # session starts answered 400 with this reason
    busy: int = 0                               # session starts answered 503
    hold_chunk: int | None = None               # the n-th PUT (1-based) waits for `release`
    release: asyncio.Event = field(default_factory=asyncio.Event)
    held: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.port: int | None = None
        self.sessions: dict[str, dict[str, Any]] = {}
        self.videos: dict[str, dict[str, Any]] = {}
        self.puts: list[tuple[str, str]] = []    # (session, Content-Range) in order
        self.starts = 0
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator["FakePlatform"]:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/upload/videos", self.start)
        app.router.add_put("/upload/session/{sid}", self.put)
        app.router.add_get("/videos", self.list_videos)
        app.router.add_get("/channel", self.channel)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self.release.set()
            await runner.cleanup()

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    async def start(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": {"code": 401, "message": "Invalid Credentials"}}, status=401)
        self.starts += 1
        if self.busy > 0:
            self.busy -= 1
            return web.json_response({"error": {"code": 503, "message": "backend error"}}, status=503)
        if self.quota_refusals > 0:
            self.quota_refusals -= 1
            return web.json_response({"error": {"code": 403, "errors": [{"reason": "quotaExceeded"}],
                                                "message": "The request cannot be completed because you have "
                                                           "exceeded your quota.",
                                                "reset_at": self.quota_reset.isoformat()}}, status=403)
        if self.refuse:
            return web.json_response({"error": {"code": 400, "message": self.refuse}}, status=400)
        meta = await request.json()
        sid = f"s{len(self.sessions) + 1}"
        self.sessions[sid] = {"total": int(request.headers["X-Upload-Content-Length"]), "data": bytearray(),
                              "meta": meta, "video": None}
        return web.Response(status=200, headers={"Location": f"{self.url}/upload/session/{sid}"})

    async def put(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["sid"])
        if session is None:
            return web.json_response({"error": {"code": 404, "message": "no such session"}}, status=404)
        crange = request.headers.get("Content-Range", "")
        self.puts.append((request.match_info["sid"], crange))
        body = await request.read()
        if self.hold_chunk is not None and len(self.puts) == self.hold_chunk:
            self.held.set()
            await self.release.wait()
        if session["video"] is not None:  # complete: a late chunk changes nothing
            return web.json_response({"id": session["video"]}, status=201)
        if m := re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", crange):
            first, last = int(m[1]), int(m[2])
            have = len(session["data"])
            if first > have or last - first + 1 != len(body):
                return web.json_response({"error": {"code": 400, "message": "bad Content-Range"}}, status=400)
            session["data"][first:] = body
        elif not re.fullmatch(r"bytes \*/\d+", crange):
            return web.json_response({"error": {"code": 400, "message": "bad Content-Range"}}, status=400)
        if len(session["data"]) >= session["total"]:
            if session["video"] is None:
                vid = f"v{next(self._ids)}"
                session["video"] = vid
                self.videos[vid] = {"id": vid, "bytes": bytes(session["data"]), **session["meta"],
                                    "views": 0, "likes": 0, "comments": 0}
            return web.json_response({"id": session["video"]}, status=201)
        headers = {"Range": f"bytes=0-{len(session['data']) - 1}"} if session["data"] else {}
        return web.Response(status=308, headers=headers)

    async def list_videos(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": {"code": 401, "message": "Invalid Credentials"}}, status=401)
        ids = request.query.get("id", "").split(",")
        return web.json_response({"items": [
            {k: v for k, v in self.videos[i].items() if k != "bytes"} for i in ids if i in self.videos]})

    async def channel(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": {"code": 401, "message": "Invalid Credentials"}}, status=401)
        return web.json_response({"id": "UC1", "title": "Loopback Channel"})


class LoopbackPublisher:
    """Posts to a FakePlatform in `chunk`-byte pieces, resuming from `upload.state`."""

    def __init__(self, base_url: str, name: str = "loopvid", chunk: int = 64 * 1024):
        self.name, self.base, self.chunk = name, base_url, chunk
        self.seen: list[dict[str, Any]] = []     # upload.state as each try began

    def _auth(self, account) -> dict[str, str]:
        return {"Authorization": f"Bearer {account.secret('token')}"}

    async def publish(self, upload, http: aiohttp.ClientSession) -> Posted:
        self.seen.append(dict(upload.state))
        video, headers = upload.video, self._auth(upload.account)
        if upload.state.get("video_id"):  # the platform holds it already: never post it again
            return Posted(remote_id=upload.state["video_id"], url=f"{self.base}/watch/{upload.state['video_id']}")
        session = upload.state.get("session")
        if session:
            offset, done = await self._where(http, session, video.size)
        else:
            session, offset, done = await self._start(http, upload, headers), 0, None
        with open(video.path, "rb") as f:
            while done is None:
                f.seek(offset)
                piece = f.read(self.chunk)
                crange = f"bytes {offset}-{offset + len(piece) - 1}/{video.size}"
                async with http.put(session, data=piece, headers={"Content-Range": crange}) as resp:
                    if resp.status in (200, 201):
                        done = (await resp.json())["id"]
                    elif resp.status == 308:
                        offset = int(resp.headers["Range"].rsplit("-", 1)[1]) + 1
                        await upload.save(offset=offset)
                        upload.progress(100.0 * offset / video.size, f"uploaded {offset} of {video.size} bytes")
                    elif resp.status >= 500:
                        raise TryAgain(f"HTTP {resp.status}", retry_after(resp.headers.get("Retry-After")))
                    else:
                        raise PublishError(f"{self.name}: {(await resp.json())['error']['message']}")
        await upload.save("processing", video_id=done, offset=video.size)
        return Posted(remote_id=done, url=f"{self.base}/watch/{done}")

    async def _start(self, http, upload, headers) -> str:
        meta = {"title": upload.video.title, "description": upload.video.description,
                "tags": upload.video.hashtags, "privacy": upload.options.privacy,
                "made_for_kids": upload.options.made_for_kids, "short": upload.video.is_short}
        async with http.post(f"{self.base}/upload/videos", json=meta,
                             headers={**headers, "X-Upload-Content-Length": str(upload.video.size)}) as resp:
            if resp.status == 200:
                session = resp.headers["Location"]
                await upload.save("uploading", session=session, offset=0)
                return session
            body = await resp.json()
            error = body["error"]
            if resp.status == 403 and any(e.get("reason") == "quotaExceeded" for e in error.get("errors", [])):
                raise QuotaWait(datetime.fromisoformat(error["reset_at"]), "the daily upload quota is used up")
            if resp.status >= 500:
                raise TryAgain(f"HTTP {resp.status}: {error['message']}")
            raise PublishError(f"{self.name}: {error['message']}")

    async def _where(self, http, session: str, total: int) -> tuple[int, str | None]:
        async with http.put(session, headers={"Content-Range": f"bytes */{total}"}) as resp:
            if resp.status in (200, 201):
                return total, (await resp.json())["id"]
            if resp.status == 308:
                got = resp.headers.get("Range")
                return (int(got.rsplit("-", 1)[1]) + 1 if got else 0), None
            raise TryAgain(f"HTTP {resp.status} asking where the upload got to")

    async def check(self, account, http: aiohttp.ClientSession) -> str:
        async with http.get(f"{self.base}/channel", headers=self._auth(account)) as resp:
            if resp.status != 200:
                raise PublishError(f"{self.name}: HTTP {resp.status}: {(await resp.json())['error']['message']}")
            body = await resp.json()
            return f"channel {body['title']!r} ({body['id']})"

    async def figures(self, account, remote_ids: list[str], http: aiohttp.ClientSession) -> dict[str, Figures]:
        async with http.get(f"{self.base}/videos", params={"id": ",".join(remote_ids)},
                            headers=self._auth(account)) as resp:
            items = (await resp.json())["items"]
        return {i["id"]: Figures(views=i["views"], likes=i["likes"], comments=i["comments"]) for i in items}


class PublishingPlugin:
    """Registers a LoopbackPublisher (pass it in, so the test can read what it saw)."""

    __name__ = "loopback_publishing"

    def __init__(self, publisher: LoopbackPublisher):
        self.publisher = publisher

    @hookimpl
    def register_publishers(self, register):
        register(self.publisher)
