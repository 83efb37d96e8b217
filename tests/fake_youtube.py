"""A fake Google (OAuth token endpoint + YouTube Data API v3) on 127.0.0.1, following
../shared/reference/publishing.md §2.1, for tests.

What our publisher depends on is kept as documented: refresh-token grants answering
`invalid_client` / `invalid_grant`, access tokens that expire; the resumable upload's session
start (its headers and `video` body checked, the session URI in `Location`), chunked PUTs
with `Content-Range` (every chunk but the last a multiple of 256 KiB, each starting where the
server's `Range` said), `308 Resume Incomplete` with `Range: bytes=0-N` (none before the first
byte), the status query `Content-Range: bytes */N`, 404 for an expired session, 201 with the
video resource once the last byte lands; Google's error envelope (`error.code`, `.message`,
`.errors[].domain/reason`) for quotaExceeded, uploadLimitExceeded and 401s; videos.list and
channels.list. Faults are plain attributes a test sets mid-run; every byte that lands is kept,
so a test compares the video YouTube got with the file it sent.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from aiohttp import web

from tests.fake_oauth import IssuedTokens, bearer, serving

CLIENT_ID = "1234-fake.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-fake-client-secret"
REFRESH_TOKEN = "1//fake-refresh-token-0123456789"
QUANTUM = 262144
UPLOAD_PATH = "/upload/youtube/v3/videos"
QUOTA_MESSAGE = ('The request cannot be completed because you have exceeded your '
                 '<a href="/youtube/v3/getting-started#quota">quota</a>.')
STATUS_FIELDS = {"privacyStatus", "selfDeclaredMadeForKids", "containsSyntheticMedia", "publishAt", "license",
                 "embeddable", "publicStatsViewable"}
_CHUNK = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
_QUERY = re.compile(r"^bytes \*/(\d+)$")


def google_error(status: int, message: str, reason: str, domain: str = "global") -> web.Response:
    """Google's error envelope, as the Data API sends it."""
    body = {"error": {"code": status, "message": message,
                      "errors": [{"message": message, "domain": domain, "reason": reason}]}}
    return web.json_response(body, status=status)


@dataclass
class Session:
    id: str
    total: int
    mime: str
    resource: dict[str, Any]
    params: dict[str, str]
    created: float
    received: bytearray = field(default_factory=bytearray)
    video_id: str | None = None


@dataclass
class Video:
    id: str
    resource: dict[str, Any]
    data: bytes
    session: str
    views: int = 0
    likes: int = 0
    comments: int = 0
    upload_status: str = "uploaded"


@dataclass
class FakeYouTube:
    """Knobs are plain attributes so a test can change behaviour mid-run."""

    token_ttl: int = 3599                 # expires_in of each access token, seconds
    session_ttl: float | None = None      # a session older than this answers 404 (Google keeps them ~a week)
    channel_title: str = "Acme Shorts"
    channel_id: str = "UCfakechannel0000000001"
    readonly_scope: bool = True           # the refresh token was granted youtube.readonly (channels.list, figures)
    revoked: bool = False                 # the refresh token is revoked: invalid_grant
    refuse_tokens: bool = False           # every access token is refused with 401, fresh ones too (a lost scope)
    # faults
    quota_exceeded: bool = False          # session starts answer 403 quotaExceeded
    upload_limit: bool = False            # session starts answer 400 uploadLimitExceeded
    fail_chunks_503: int = 0              # this many chunk PUTs answer 503 (nothing of them kept)
    drop_at: int | None = None            # a chunk spanning this file offset: kept up to it (whole 256 KiB), then the connection drops (once)
    expire_tokens_at: int | None = None   # once a session holds this many bytes, every issued access token expires (once)
    expire_sessions: bool = False         # every existing session answers 404 from now on (as an expired one does)
    expire_session_at: int | None = None  # the first session to hold this many bytes expires (404 from then on)
    lose_final_answer: bool = False       # the last chunk lands, then the connection drops before the 201 (once)
    hold_at: int | None = None            # a chunk starting at or past this offset waits for `release`, then is dropped unkept (a kill test)
    calls: collections.Counter = field(default_factory=collections.Counter)
    refreshes: int = 0
    sessions: dict[str, Session] = field(default_factory=dict)
    videos: dict[str, Video] = field(default_factory=dict)
    chunk_sizes: list[int] = field(default_factory=list)        # bytes of every chunk PUT that arrived whole
    chunk_starts: list[int] = field(default_factory=list)       # the first byte of every chunk PUT
    problems: list[str] = field(default_factory=list)           # protocol mistakes the client made

    def __post_init__(self) -> None:
        self.port: int | None = None
        self.tokens = IssuedTokens("ya29.fake-")
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        self._dropped = False
        self._expired_tokens = False
        self._expired_session: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self) -> dict[str, Any]:
        """The youtube plugin's settings pointing at this fake."""
        return {"token_url": f"{self.url}/token", "upload_url": f"{self.url}{UPLOAD_PATH}",
                "api_url": f"{self.url}/youtube/v3"}

    @staticmethod
    def secrets() -> dict[str, str]:
        return {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024 ** 3)
        app.router.add_post("/token", self.token)
        app.router.add_post(UPLOAD_PATH, self.start)
        app.router.add_put(UPLOAD_PATH, self.put)
        app.router.add_get("/youtube/v3/videos", self.videos_list)
        app.router.add_get("/youtube/v3/channels", self.channels_list)
        return app

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator["FakeYouTube"]:
        async with serving(self.app(), self.port) as self.port:
            try:
                yield self
            finally:
                self.release.set()

    # ---- OAuth ------------------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.Response:
        self.calls["token"] += 1
        form = await request.post()
        refusal = self.tokens.grant(form, grant_type="refresh_token",
                                    client={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
                                    exchanged="refresh_token", accept=lambda t: t == REFRESH_TOKEN and not self.revoked)
        if refusal == "unsupported_grant_type":
            return web.json_response({"error": refusal,
                                      "error_description": f"Invalid grant_type: {form.get('grant_type')}"}, status=400)
        if refusal == "invalid_client":
            return web.json_response({"error": refusal, "error_description": "Unauthorized"}, status=401)
        if refusal == "invalid_grant":
            return web.json_response({"error": refusal,
                                      "error_description": "Token has been expired or revoked."}, status=400)
        self.refreshes += 1
        access = self.tokens.issue(self.token_ttl)
        scope = "https://www.googleapis.com/auth/youtube.upload"
        if self.readonly_scope:
            scope += " https://www.googleapis.com/auth/youtube.readonly"
        return web.json_response({"access_token": access, "expires_in": self.token_ttl, "scope": scope,
                                  "token_type": "Bearer"})

    def _unauthorised(self, request: web.Request) -> web.Response | None:
        if self.tokens.valid(bearer(request)) and not self.refuse_tokens:
            return None
        self.calls["401"] += 1
        return google_error(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                                 "login cookie or other valid authentication credential.", "authError")

    # ---- resumable upload -------------------------------------------------------------------

    async def start(self, request: web.Request) -> web.Response:
        self.calls["start"] += 1
        if (refused := self._unauthorised(request)) is not None:
            return refused
        body = await request.read()
        if self.quota_exceeded:
            return google_error(403, QUOTA_MESSAGE, "quotaExceeded", "youtube.quota")
        if self.upload_limit:
            return google_error(400, "The user has exceeded the number of videos they may upload.",
                                "uploadLimitExceeded", "youtube.video")
        q = request.query
        if q.get("uploadType") != "resumable":
            return self._bad(f"uploadType must be resumable, not {q.get('uploadType')!r}")
        parts = set(q.get("part", "").split(","))
        if not {"snippet", "status"} <= parts:
            return self._bad(f"part must name snippet and status, not {q.get('part')!r}")
        if q.get("notifySubscribers") not in (None, "true", "false"):
            return self._bad("notifySubscribers must be true or false")
        if not request.headers.get("Content-Type", "").startswith("application/json"):
            return self._bad("the video resource must be sent as application/json")
        if request.headers.get("Content-Length") != str(len(body)):
            return self._bad("Content-Length does not match the body")
        try:
            total = int(request.headers.get("X-Upload-Content-Length", ""))
        except ValueError:
            return self._bad("X-Upload-Content-Length is missing or not a number")
        mime = request.headers.get("X-Upload-Content-Type", "")
        if total <= 0 or not (mime.startswith("video/") or mime == "application/octet-stream"):
            return self._bad("X-Upload-Content-Length must be positive and X-Upload-Content-Type a video type")
        try:
            resource = json.loads(body)
        except ValueError:
            return self._bad("the body is not JSON")
        problem = _check_resource(resource)
        if problem:
            return self._bad(problem, reason="invalidVideoMetadata")
        session = Session(secrets.token_hex(16), total, mime, resource, dict(q), time.monotonic())
        self.sessions[session.id] = session
        location = f"{self.url}{UPLOAD_PATH}?uploadType=resumable&upload_id={session.id}"
        return web.Response(status=200, headers={"Location": location})

    def _bad(self, message: str, reason: str = "badRequest") -> web.Response:
        self.problems.append(message)
        return google_error(400, message, reason)

    def _session(self, request: web.Request) -> Session | None:
        session = self.sessions.get(request.query.get("upload_id", ""))
        if session is None or self.expire_sessions:
            return None
        if self.expire_session_at is not None and len(session.received) >= self.expire_session_at:
            self._expired_session = self._expired_session or session.id
        if session.id == self._expired_session:
            return None
        if self.session_ttl is not None and time.monotonic() - session.created > self.session_ttl:
            return None
        return session

    async def put(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._unauthorised(request)) is not None:
            await request.read()
            return refused
        session = self._session(request)
        if session is None:
            self.calls["gone"] += 1
            await request.read()
            return web.Response(status=404, text="Not Found")
        rng = request.headers.get("Content-Range", "")
        if (m := _QUERY.match(rng)) is not None:
            self.calls["status"] += 1
            await request.read()
            if int(m.group(1)) != session.total:
                return self._bad(f"the status query names {m.group(1)} bytes, the session has {session.total}")
            return self._answer(session)
        self.calls["chunk"] += 1
        m = _CHUNK.match(rng)
        if m is None:
            await request.read()
            return self._bad(f"a chunk needs Content-Range: bytes FIRST-LAST/TOTAL, not {rng!r}")
        first, last, total = (int(g) for g in m.groups())
        self.chunk_starts.append(first)
        size = last - first + 1
        if total != session.total or first != len(session.received) or size <= 0 or last >= total:
            await request.read()
            return self._bad(f"chunk {rng} does not continue the session at byte {len(session.received)} of "
                             f"{session.total}")
        if request.headers.get("Content-Length") != str(size):
            await request.read()
            return self._bad(f"Content-Length {request.headers.get('Content-Length')} is not the chunk's {size} bytes")
        if last != total - 1 and size % QUANTUM:
            await request.read()
            return self._bad(f"a chunk of {size} bytes is not a multiple of 256 KiB and not the last")
        if self.hold_at is not None and first >= self.hold_at:
            self.held.set()
            await self.release.wait()
            # The client was killed meanwhile: the chunk is not kept, whatever of it the socket buffered.
            self.calls["lost"] += 1
            with contextlib.suppress(Exception):
                await request.read()
            return web.Response(status=400)
        if self.fail_chunks_503 > 0:
            self.fail_chunks_503 -= 1
            await request.read()
            return google_error(503, "Backend Error", "backendError")
        if self.drop_at is not None and not self._dropped and first <= self.drop_at <= last:
            self._dropped = True
            part = await request.content.readexactly(self.drop_at - first)
            kept = (len(part) // QUANTUM) * QUANTUM
            session.received += part[:kept]
            self.calls["dropped"] += 1
            request.transport.close()  # mid-chunk: the client never hears how much of it landed
            return web.Response(status=500)
        try:
            data = await request.read()
        except Exception:  # the client went away mid-chunk: nothing of it is kept
            self.calls["lost"] += 1
            return web.Response(status=400)
        if len(data) != size:
            return self._bad(f"the chunk carried {len(data)} bytes, its Content-Range {size}")
        session.received += data
        self.chunk_sizes.append(size)
        if self.lose_final_answer and len(session.received) == session.total:
            self.lose_final_answer = False
            self._answer(session)  # the video exists now; its answer never reaches the client
            self.calls["lost answer"] += 1
            request.transport.close()
            return web.Response(status=500)
        if (self.expire_tokens_at is not None and not self._expired_tokens
                and len(session.received) >= self.expire_tokens_at and len(session.received) < session.total):
            self._expired_tokens = True
            self.tokens.expire()
        return self._answer(session)

    def _answer(self, session: Session) -> web.Response:
        """201 with the video once every byte is in, else 308 with what landed."""
        if len(session.received) == session.total:
            if session.video_id is None:
                video_id = secrets.token_urlsafe(8)[:11]
                resource = json.loads(json.dumps(session.resource))
                resource.setdefault("status", {})["uploadStatus"] = "uploaded"
                self.videos[video_id] = Video(video_id, resource, bytes(session.received), session.id)
                session.video_id = video_id
            return web.json_response(self._video_json(self.videos[session.video_id], {"snippet", "status"}),
                                     status=201)
        headers = {"Range": f"bytes=0-{len(session.received) - 1}"} if session.received else {}
        return web.Response(status=308, headers=headers)

    def add_video(self, data: bytes, title: str = "Uploaded before") -> str:
        """A video already on the channel (as if uploaded by an earlier life of the daemon); its id."""
        video_id = secrets.token_urlsafe(8)[:11]
        resource = {"snippet": {"title": title}, "status": {"privacyStatus": "private"}}
        self.videos[video_id] = Video(video_id, resource, data, session="")
        return video_id

    # ---- Data API reads ---------------------------------------------------------------------

    def _video_json(self, video: Video, parts: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "youtube#video", "id": video.id}
        if "snippet" in parts:
            out["snippet"] = {**video.resource.get("snippet", {}), "channelId": self.channel_id}
        if "status" in parts:
            out["status"] = {**video.resource.get("status", {}), "uploadStatus": video.upload_status}
        if "statistics" in parts:
            out["statistics"] = {"viewCount": str(video.views), "likeCount": str(video.likes),
                                 "favoriteCount": "0", "commentCount": str(video.comments)}
        return out

    async def videos_list(self, request: web.Request) -> web.Response:
        self.calls["videos.list"] += 1
        if (refused := self._unauthorised(request)) is not None:
            return refused
        parts = set(request.query.get("part", "").split(","))
        ids = [i for i in request.query.get("id", "").split(",") if i]
        if not parts - {""} or not ids:
            return self._bad("videos.list needs part and id")
        if len(ids) > 50:
            return self._bad("videos.list takes at most 50 ids", reason="invalidFilters")
        items = [self._video_json(self.videos[i], parts) for i in ids if i in self.videos]
        return web.json_response({"kind": "youtube#videoListResponse", "items": items,
                                  "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)}})

    async def channels_list(self, request: web.Request) -> web.Response:
        self.calls["channels.list"] += 1
        if (refused := self._unauthorised(request)) is not None:
            return refused
        if not self.readonly_scope:
            return google_error(403, "Request had insufficient authentication scopes.", "insufficientPermissions")
        if request.query.get("mine") != "true" or "snippet" not in request.query.get("part", "").split(","):
            return self._bad("channels.list: expected part=snippet&mine=true")
        return web.json_response({"kind": "youtube#channelListResponse", "items": [
            {"kind": "youtube#channel", "id": self.channel_id, "snippet": {"title": self.channel_title}}]})


def _check_resource(resource: Any) -> str | None:
    """Why videos.insert would refuse this `video` resource, or None."""
    if not isinstance(resource, dict):
        return "the body is not a video resource"
    snippet, status = resource.get("snippet"), resource.get("status")
    if not isinstance(snippet, dict) or not isinstance(status, dict):
        return "the video resource needs snippet and status"
    title = snippet.get("title")
    if not isinstance(title, str) or not title.strip():
        return "snippet.title is required"
    if len(title) > 100 or "<" in title or ">" in title:
        return "invalidTitle: at most 100 characters, no < or >"
    description = snippet.get("description", "")
    if not isinstance(description, str) or len(description.encode()) > 5000 or "<" in description or ">" in description:
        return "invalidDescription: at most 5000 bytes, no < or >"
    tags = snippet.get("tags", [])
    if not isinstance(tags, list) or sum(len(t) for t in tags) + max(0, len(tags) - 1) > 500:
        return "invalidTags: at most 500 characters"
    if "categoryId" in snippet and not str(snippet["categoryId"]).isdigit():
        return "invalidCategoryId"
    if set(status) - STATUS_FIELDS:
        return f"status has unknown fields {sorted(set(status) - STATUS_FIELDS)}"
    if status.get("privacyStatus") not in ("private", "unlisted", "public"):
        return "invalidPrivacyStatus"
    for flag in ("selfDeclaredMadeForKids", "containsSyntheticMedia"):
        if flag in status and not isinstance(status[flag], bool):
            return f"status.{flag} must be a boolean"
    return None
