"""A fake TikTok Content Posting API on 127.0.0.1 following ../shared/reference/publishing.md §2.2.

What our publisher depends on, kept as TikTok documents it: the ``{"data", "error": {"code",
"message", "log_id"}}`` envelope on every answer; refresh-token grants that issue access tokens
which expire (401 ``access_token_invalid`` after); creator info with ``privacy_level_options`` and
``max_video_post_duration_sec``; per-token limits (20 creator_info and 6 inits a minute, HTTP 429
``rate_limit_exceeded``); an unaudited client posting SELF_ONLY only; the FILE_UPLOAD chunk rules
(refused at init with ``invalid_params`` and on each PUT that breaks them); status moving
PROCESSING_UPLOAD -> PUBLISH_COMPLETE (or SEND_TO_USER_INBOX, or FAILED with a fail_reason); a
200 answer with a non-``ok`` code on demand (``spam_risk_too_many_posts``); and video/query figures.
Every call is counted by endpoint, and every post TikTok made is kept with its bytes.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from aiohttp import web

from tests.fake_oauth import IssuedTokens, bearer, serving

CLIENT_KEY = "tt-client-key"
CLIENT_SECRET = "tt-client-secret-0123456789"
REFRESH_TOKEN = "tt-refresh-token-0123456789"

MiB = 1024 * 1024
TOKEN = web.RequestKey("token", str)
LEVELS = ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR", "SELF_ONLY"]


@dataclass
class FakePost:
    publish_id: str
    mode: str                      # "direct" or "inbox"
    post_info: dict[str, Any]
    video_size: int
    chunk_size: int
    total_chunk_count: int
    received: bytearray = field(default_factory=bytearray)
    chunks: int = 0
    status: str = "PROCESSING_UPLOAD"
    polls_after_upload: int = 0
    fail_reason: str | None = None
    post_id: int | None = None
    created: float = field(default_factory=time.monotonic)


@dataclass
class FakeTikTok:
    """Knobs are plain attributes so a test can change behaviour mid-run."""

    token_ttl: float = 86400.0              # seconds an access token lives
    username: str = "acme.avatars"
    nickname: str = "Acme Avatars"
    privacy_level_options: list[str] = field(default_factory=lambda: ["FOLLOWER_OF_CREATOR", "SELF_ONLY"])
    max_video_post_duration_sec: int = 600
    audited: bool = False                   # an unaudited client may post SELF_ONLY only
    init_per_minute: int = 6
    creator_info_per_minute: int = 20
    processing_polls: int = 2               # status fetches answered PROCESSING_UPLOAD after the last chunk
    fail_reason: str | None = None          # the next post fails with this after processing
    answer_next: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)  # (endpoint, status, body)
    upload_url_ttl: float = 3600.0
    figures: dict[str, dict[str, int]] = field(default_factory=dict)
    calls: collections.Counter = field(default_factory=collections.Counter)
    posts: dict[str, FakePost] = field(default_factory=dict)
    refused: list[tuple[str, dict[str, Any]]] = field(default_factory=list)   # (endpoint, error) we answered

    def __post_init__(self) -> None:
        self.port: int | None = None
        self.tokens = IssuedTokens("act.")
        self.windows: dict[tuple[str, str], collections.deque] = collections.defaultdict(collections.deque)
        self.ids = itertools.count(7_300_000_000_000_000_001)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def published(self) -> list[FakePost]:
        return [p for p in self.posts.values() if p.status in ("PUBLISH_COMPLETE", "SEND_TO_USER_INBOX")]

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (as after ~24 h)."""
        self.tokens.expire()

    # ---- plumbing --------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=200 * MiB, middlewares=[self._envelope])
        r = app.router
        r.add_post("/v2/oauth/token/", self.oauth_token)
        r.add_post("/v2/post/publish/creator_info/query/", self.creator_info)
        r.add_post("/v2/post/publish/video/init/", self.video_init)
        r.add_post("/v2/post/publish/inbox/video/init/", self.inbox_init)
        r.add_post("/v2/post/publish/status/fetch/", self.status_fetch)
        r.add_put("/upload/{publish_id}", self.upload_chunk)
        r.add_post("/v2/video/query/", self.video_query)
        return app

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator["FakeTikTok"]:
        async with serving(self.app(), self.port) as self.port:
            yield self

    @web.middleware
    async def _envelope(self, request: web.Request, handler):
        name = request.match_info.route.handler.__name__ if request.match_info.route else "unknown"
        self.calls[name] += 1
        if name in ("oauth_token", "upload_chunk"):
            return await handler(request)
        token = bearer(request)
        if not self.tokens.valid(token):
            return self._error(name, 401, "access_token_invalid",
                               "The access token is invalid or not found in the request.")
        request[TOKEN] = token
        for i, (endpoint, status, body) in enumerate(self.answer_next):
            if endpoint == name:
                del self.answer_next[i]
                if "error" in body:
                    self.refused.append((name, body["error"]))
                return web.json_response(body, status=status)
        return await handler(request)

    def _error(self, endpoint: str, status: int, code: str, message: str) -> web.Response:
        error = {"code": code, "message": message, "log_id": secrets.token_hex(8)}
        self.refused.append((endpoint, error))
        return web.json_response({"data": {}, "error": error}, status=status)

    @staticmethod
    def _ok(data: dict[str, Any]) -> web.Response:
        return web.json_response({"data": data, "error": {"code": "ok", "message": "", "log_id": secrets.token_hex(8)}})

    def _limited(self, kind: str, token: str, per_minute: int) -> bool:
        window = self.windows[(kind, token)]
        now = time.monotonic()
        while window and window[0] <= now - 60.0:
            window.popleft()
        if len(window) >= per_minute:
            return True
        window.append(now)
        return False

    # ---- OAuth ---------------------------------------------------------------------------

    async def oauth_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        refusal = self.tokens.grant(form, grant_type="refresh_token",
                                    client={"client_key": CLIENT_KEY, "client_secret": CLIENT_SECRET},
                                    exchanged="refresh_token", accept=lambda t: t == REFRESH_TOKEN)
        if refusal in ("unsupported_grant_type", "invalid_client"):  # TikTok names both invalid_client
            return web.json_response({"error": "invalid_client", "error_description": "Client key or secret is invalid",
                                      "log_id": secrets.token_hex(8)}, status=401)
        if refusal == "invalid_grant":
            return web.json_response({"error": refusal, "error_description": "Refresh token is invalid or expired",
                                      "log_id": secrets.token_hex(8)}, status=400)
        token = self.tokens.issue(self.token_ttl)
        return web.json_response({"access_token": token, "expires_in": int(self.token_ttl), "open_id": "open-1",
                                  "refresh_token": REFRESH_TOKEN, "refresh_expires_in": 31536000,
                                  "scope": "video.publish,video.upload,video.list", "token_type": "Bearer"})

    # ---- posting -------------------------------------------------------------------------

    async def creator_info(self, request: web.Request) -> web.Response:
        if self._limited("creator_info", request[TOKEN], self.creator_info_per_minute):
            return self._error("creator_info", 429, "rate_limit_exceeded", "API rate limit exceeded")
        return self._ok({"creator_avatar_url": "https://example.invalid/a.jpg", "creator_username": self.username,
                         "creator_nickname": self.nickname, "privacy_level_options": self.privacy_level_options,
                         "comment_disabled": False, "duet_disabled": False, "stitch_disabled": False,
                         "max_video_post_duration_sec": self.max_video_post_duration_sec})

    async def video_init(self, request: web.Request) -> web.Response:
        return await self._init(request, "direct")

    async def inbox_init(self, request: web.Request) -> web.Response:
        return await self._init(request, "inbox")

    async def _init(self, request: web.Request, mode: str) -> web.Response:
        endpoint = "video_init" if mode == "direct" else "inbox_init"
        if self._limited("init", request[TOKEN], self.init_per_minute):
            return self._error(endpoint, 429, "rate_limit_exceeded", "API rate limit exceeded")
        body = await request.json()
        post_info = body.get("post_info") or {}
        if mode == "direct":
            level = post_info.get("privacy_level")
            if level not in LEVELS or level not in self.privacy_level_options:
                return self._error(endpoint, 403, "privacy_level_option_mismatch",
                                   "privacy_level is not one of the creator's privacy_level_options")
            if not self.audited and level != "SELF_ONLY":
                return self._error(endpoint, 403, "unaudited_client_can_only_post_to_private_accounts",
                                   "Unaudited clients can only post to a private account")
            if not all(isinstance(post_info.get(k), bool) for k in ("brand_content_toggle", "brand_organic_toggle")):
                return self._error(endpoint, 400, "invalid_params", "brand_content_toggle and brand_organic_toggle "
                                                                    "are required")
            if len(post_info.get("title") or "") > 2200:
                return self._error(endpoint, 400, "invalid_params", "title is longer than 2200 characters")
        source = body.get("source_info") or {}
        refusal = self._check_source(source)
        if refusal:
            return self._error(endpoint, 400, "invalid_params", refusal)
        publish_id = f"v_pub_file~v2-1.{next(self.ids)}"
        self.posts[publish_id] = FakePost(publish_id, mode, post_info, source["video_size"], source["chunk_size"],
                                          source["total_chunk_count"])
        return self._ok({"publish_id": publish_id, "upload_url": f"{self.url}/upload/{publish_id}"})

    @staticmethod
    def _check_source(source: dict[str, Any]) -> str | None:
        """The media transfer guide's chunk rules, as TikTok checks them at init."""
        if source.get("source") != "FILE_UPLOAD":
            return "source must be FILE_UPLOAD here (PULL_FROM_URL needs a verified domain)"
        size, chunk, count = source.get("video_size"), source.get("chunk_size"), source.get("total_chunk_count")
        if not all(isinstance(v, int) and v > 0 for v in (size, chunk, count)):
            return "video_size, chunk_size and total_chunk_count must be positive integers"
        if size < 5 * MiB:
            if chunk != size or count != 1:
                return "a video under 5 MB must be uploaded whole (chunk_size = video_size, one chunk)"
            return None
        if chunk > size:
            return "chunk_size is larger than video_size"
        if chunk < 5 * MiB or chunk > 64 * MiB:
            return "chunk_size must be between 5 MB and 64 MB"
        if count != size // chunk:
            return "total_chunk_count must be video_size / chunk_size rounded down"
        if not 1 <= count <= 1000:
            return "total_chunk_count must be between 1 and 1000"
        if size - (count - 1) * chunk > 128 * MiB:
            return "the final chunk may be at most 128 MB"
        return None

    async def upload_chunk(self, request: web.Request) -> web.Response:
        post = self.posts.get(request.match_info["publish_id"])
        if post is None or time.monotonic() > post.created + self.upload_url_ttl:
            return web.json_response({"error": {"code": "not_found", "message": "upload url is invalid or expired"}},
                                     status=404)
        body = await request.read()
        header = request.headers.get("Content-Range", "")
        try:
            unit, span = header.split(" ", 1)
            first_last, total = span.split("/")
            first, last = (int(x) for x in first_last.split("-"))
            total = int(total)
        except ValueError:
            return self._range_error(post, "Content-Range must be bytes {first}-{last}/{total}", 400)
        index = post.chunks
        expected_first = index * post.chunk_size
        expected_last = post.video_size - 1 if index == post.total_chunk_count - 1 else expected_first + post.chunk_size - 1
        if unit != "bytes" or total != post.video_size:
            return self._range_error(post, "the total in Content-Range is not the video_size given at init", 400)
        if index >= post.total_chunk_count:
            return self._range_error(post, "every chunk has arrived already", 416)
        if (first, last) != (expected_first, expected_last):
            return self._range_error(post, f"chunks must arrive in order: expected bytes {expected_first}-"
                                           f"{expected_last}, got {first}-{last}", 416)
        if len(body) != last - first + 1 or request.headers.get("Content-Length") != str(len(body)):
            return self._range_error(post, "the body is not the length of its Content-Range", 400)
        post.received.extend(body)
        post.chunks += 1
        if post.chunks < post.total_chunk_count:
            return web.Response(status=206, headers={"Content-Range": f"bytes 0-{len(post.received) - 1}/{total}"})
        return web.Response(status=201)

    def _range_error(self, post: FakePost, message: str, status: int) -> web.Response:
        error = {"code": "invalid_params", "message": message, "log_id": secrets.token_hex(8)}
        self.refused.append(("upload_chunk", error))
        return web.json_response({"error": error}, status=status)

    async def status_fetch(self, request: web.Request) -> web.Response:
        body = await request.json()
        post = self.posts.get(body.get("publish_id"))
        if post is None:
            return self._error("status_fetch", 400, "invalid_publish_id", "publish_id does not exist")
        if post.status == "PROCESSING_UPLOAD" and post.chunks == post.total_chunk_count:
            post.polls_after_upload += 1
            if post.polls_after_upload > self.processing_polls:
                if self.fail_reason:
                    post.status, post.fail_reason, self.fail_reason = "FAILED", self.fail_reason, None
                elif post.mode == "inbox":
                    post.status = "SEND_TO_USER_INBOX"
                else:
                    post.status, post.post_id = "PUBLISH_COMPLETE", next(self.ids)
        data: dict[str, Any] = {"status": post.status, "uploaded_bytes": len(post.received)}
        if post.status == "FAILED":
            data["fail_reason"] = post.fail_reason
        if post.post_id is not None:
            data["publicaly_available_post_id"] = [post.post_id]   # (sic: TikTok's spelling)
        return self._ok(data)

    async def video_query(self, request: web.Request) -> web.Response:
        fields = (request.query.get("fields") or "").split(",")
        body = await request.json()
        ids = ((body.get("filters") or {}).get("video_ids")) or []
        if len(ids) > 20:
            return self._error("video_query", 400, "invalid_params", "at most 20 video_ids")
        known = {str(p.post_id): p for p in self.posts.values() if p.post_id is not None}
        videos = []
        for vid in ids:
            if str(vid) in known:
                counts = {"view_count": 0, "like_count": 0, "comment_count": 0, **self.figures.get(str(vid), {})}
                videos.append({"id": str(vid), **{f: counts[f] for f in fields if f in counts}})
        return self._ok({"videos": videos, "cursor": 0, "has_more": False})
