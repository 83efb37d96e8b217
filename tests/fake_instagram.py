"""A fake Instagram Graph API (Reels, resumable) and rupload host on 127.0.0.1, after publishing.md §2.3.

What our publisher depends on, kept as Meta documents it: Graph's ``{"error": {"message", "type",
"code", "error_subcode", "fbtrace_id"}}`` refusals; access tokens that expire (code 190) and
``fb_exchange_token`` exchanges for new long-lived ones; ``content_publishing_limit`` over a rolling
24 hours with ``config.quota_total`` enforced at ``media_publish`` (code 9, subcode 2207042);
resumable containers (``upload_type=resumable``) whose bytes go to ``/ig-api-upload/<ver>/<id>``
with ``Authorization: OAuth``, ``offset`` and ``file_size`` headers, the rupload host's own
``debug_info`` refusals, the bytes received reported by the container's ``video_status``
(``uploading_phase.bytes_transferred``, where a resumed upload starts); a container that stays
``IN_PROGRESS`` for N status polls before ``FINISHED`` or ``ERROR`` (or ``EXPIRED``), then
``PUBLISHED``; ``media_publish`` refused (9007) before FINISHED; media with permalinks and
insights (``views``, ``likes``, ``comments``; the retired ``plays`` refused). Every call is counted
by endpoint and every ``media_publish`` call too.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Callable

from aiohttp import web

from tests.fake_oauth import IssuedTokens, bearer, serving

VERSION = "v25.0"
IG_USER_ID = "17841400000000001"
APP_ID = "1234567890"
APP_SECRET = "ig-app-secret-0123456789"
ACCESS_TOKEN = "EAAG-long-lived-0123456789"
METRICS = {"views", "likes", "comments", "shares", "saved", "reach", "total_interactions"}


@dataclass
class FakeContainer:
    id: str
    params: dict[str, str]
    created: datetime
    file_size: int | None = None
    received: bytearray = field(default_factory=bytearray)
    status: str = "IN_PROGRESS"
    polls_after_upload: int = 0
    error: str | None = None
    media_id: str | None = None


@dataclass
class FakeMedia:
    id: str
    container: str
    caption: str
    timestamp: datetime
    bytes: bytes


@dataclass
class FakeInstagram:
    """Knobs are plain attributes so a test can change behaviour mid-run."""

    token_ttl: float = 60 * 86400.0
    username: str = "acme.avatars"
    quota_total: int = 100
    processing_polls: int = 2           # status polls answered IN_PROGRESS after the bytes are all in
    error_status: str | None = None     # the next container ends ERROR with this `status` text
    expire_next: bool = False           # the next container ends EXPIRED instead
    cut_upload_after: int | None = None  # the next upload stops after this many bytes (503, retriable)
    drop_after_publish: int = 0         # media_publish succeeds but the answer never arrives
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    figures: dict[str, dict[str, int]] = field(default_factory=dict)
    calls: collections.Counter = field(default_factory=collections.Counter)
    containers: dict[str, FakeContainer] = field(default_factory=dict)
    media: dict[str, FakeMedia] = field(default_factory=dict)
    publish_calls: int = 0
    exchanges: int = 0
    refused: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port: int | None = None
        self.tokens = IssuedTokens("EAAG-", configured={ACCESS_TOKEN: self.token_ttl})
        self.ids = itertools.count(17_900_000_000_000_001)
        self.upload_headers: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def expire_tokens(self, *, keep_configured: bool = True) -> None:
        """Tokens issued by exchange stop working (the configured long-lived one too unless kept)."""
        self.tokens.expire(keep=(ACCESS_TOKEN,) if keep_configured else ())

    def used(self) -> int:
        since = self.clock() - timedelta(hours=24)
        return sum(1 for m in self.media.values() if m.timestamp > since)

    # ---- plumbing --------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=200 * 1024 * 1024, middlewares=[self._auth])
        r = app.router
        r.add_post("/ig-api-upload/{version}/{container}", self.rupload)
        r.add_get("/{version}/oauth/access_token", self.exchange)
        r.add_get("/{version}/{id}/content_publishing_limit", self.publishing_limit)
        r.add_post("/{version}/{id}/media", self.create_container)
        r.add_get("/{version}/{id}/media", self.list_media)
        r.add_post("/{version}/{id}/media_publish", self.media_publish)
        r.add_get("/{version}/{id}/insights", self.insights)
        r.add_get("/{version}/{id}", self.node)
        return app

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator["FakeInstagram"]:
        async with serving(self.app(), self.port) as self.port:
            yield self

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        name = request.match_info.route.handler.__name__ if request.match_info.route else "unknown"
        self.calls[name] += 1
        if name.startswith("rupload"):
            if not self.tokens.valid(bearer(request, "OAuth")):
                return self._rupload_error(400, "NotAuthorizedError", "User not authorized to perform this request")
            return await handler(request)
        if request.match_info.get("version") != VERSION:
            return self._error(name, 400, 2635, f"Unsupported API version {request.match_info.get('version')}")
        if name == "exchange":
            return await handler(request)
        if "access_token" in request.query:
            return self._error(name, 400, 100, "this fake takes tokens only in the Authorization header")
        if not self.tokens.valid(bearer(request)):
            return self._error(name, 400, 190, "Error validating access token: Session has expired.",
                               subcode=463)
        return await handler(request)

    def _error(self, endpoint: str, status: int, code: int, message: str, *, subcode: int | None = None,
               kind: str = "OAuthException") -> web.Response:
        error: dict[str, Any] = {"message": message, "type": kind, "code": code, "fbtrace_id": secrets.token_hex(6)}
        if subcode is not None:
            error["error_subcode"] = subcode
        self.refused.append((endpoint, error))
        return web.json_response({"error": error}, status=status)

    def _rupload_error(self, status: int, kind: str, message: str, retriable: bool = False) -> web.Response:
        info = {"retriable": retriable, "type": kind, "message": message}
        self.refused.append(("rupload", info))
        return web.json_response({"debug_info": info}, status=status)

    # ---- tokens --------------------------------------------------------------------------

    async def exchange(self, request: web.Request) -> web.Response:
        refusal = self.tokens.grant(request.query, grant_type="fb_exchange_token",
                                    client={"client_id": APP_ID, "client_secret": APP_SECRET},
                                    exchanged="fb_exchange_token", accept=self.tokens.valid)
        if refusal in ("unsupported_grant_type", "invalid_client"):  # Meta answers both with code 101
            return self._error("exchange", 400, 101, "Error validating client secret.")
        if refusal == "invalid_grant":
            return self._error("exchange", 400, 190, "Error validating access token: Session has expired.", subcode=463)
        self.exchanges += 1
        token = self.tokens.issue(self.token_ttl)
        return web.json_response({"access_token": token, "token_type": "bearer", "expires_in": int(self.token_ttl)})

    # ---- publishing ----------------------------------------------------------------------

    async def publishing_limit(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != IG_USER_ID:
            return self._unknown("publishing_limit", request.match_info["id"])
        return web.json_response({"data": [{"quota_usage": self.used(),
                                            "config": {"quota_total": self.quota_total, "quota_duration": 86400}}]})

    async def create_container(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != IG_USER_ID:
            return self._unknown("create_container", request.match_info["id"])
        params = {**request.query, **(await request.post())}
        if params.get("media_type") != "REELS":
            return self._error("create_container", 400, 100, "media_type must be REELS for video (VIDEO ended in 2023)")
        if params.get("upload_type") != "resumable" and not params.get("video_url"):
            return self._error("create_container", 400, 100, "The parameter video_url is required")
        text = params.get("caption", "")
        if len(text) > 2200 or text.count("#") > 30:
            return self._error("create_container", 400, 100, "The caption is too long or has more than 30 hashtags")
        container = FakeContainer(str(next(self.ids)), dict(params), self.clock())
        self.containers[container.id] = container
        return web.json_response({"id": container.id,
                                  "uri": f"{self.url}/ig-api-upload/{VERSION}/{container.id}"})

    async def rupload(self, request: web.Request) -> web.Response:
        container = self.containers.get(request.match_info["container"])
        if container is None or request.match_info["version"] != VERSION:
            return self._rupload_error(400, "InvalidRequest", "Invalid container id")
        self.upload_headers.append({k: request.headers.get(k, "") for k in ("offset", "file_size", "Content-Length")})
        try:
            offset, file_size = int(request.headers["offset"]), int(request.headers["file_size"])
        except (KeyError, ValueError):
            return self._rupload_error(400, "InvalidRequest", "offset and file_size headers are required")
        if container.file_size not in (None, file_size):
            return self._rupload_error(400, "InvalidRequest", f"file_size {file_size} differs from the first {container.file_size}")
        if offset != len(container.received):
            return self._rupload_error(400, "InvalidRequest",
                                       f"offset {offset} is not the {len(container.received)} bytes received")
        container.file_size = file_size
        cut, self.cut_upload_after = self.cut_upload_after, None
        while True:
            want = 1024 * 1024 if cut is None else min(1024 * 1024, cut - (len(container.received) - offset))
            if want <= 0:
                return self._rupload_error(503, "ServiceUnavailable", "Upload interrupted, resume from the offset", True)
            piece = await request.content.read(want)
            if not piece:
                break
            container.received.extend(piece)
        if len(container.received) != file_size:
            return self._rupload_error(400, "InvalidRequest",
                                       f"file_size {file_size} != received {len(container.received)}")
        return web.json_response({"success": True, "message": "Upload successful."})

    async def media_publish(self, request: web.Request) -> web.Response:
        self.publish_calls += 1
        if request.match_info["id"] != IG_USER_ID:
            return self._unknown("media_publish", request.match_info["id"])
        creation_id = request.query.get("creation_id") or (await request.post()).get("creation_id")
        container = self.containers.get(str(creation_id))
        if container is None:
            return self._error("media_publish", 400, 100, f"Invalid creation_id {creation_id}")
        if self.used() >= self.quota_total:
            return self._error("media_publish", 400, 9, "Application request limit reached", subcode=2207042)
        if container.status == "PUBLISHED":
            return self._error("media_publish", 400, 9007, "The media has already been published", subcode=2207008)
        if container.status != "FINISHED":
            return self._error("media_publish", 400, 9007, "Media ID is not available", subcode=2207027)
        media = FakeMedia(str(next(self.ids)), container.id, container.params.get("caption", ""), self.clock(),
                          bytes(container.received))
        self.media[media.id] = media
        container.status, container.media_id = "PUBLISHED", media.id
        if self.drop_after_publish > 0:
            self.drop_after_publish -= 1
            request.transport.close()   # published on Instagram, but the answer never arrives
            return web.Response(status=500)
        return web.json_response({"id": media.id})

    async def list_media(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != IG_USER_ID:
            return self._unknown("list_media", request.match_info["id"])
        fields = (request.query.get("fields") or "id").split(",")
        limit = int(request.query.get("limit") or 25)
        rows = sorted(self.media.values(), key=lambda m: m.timestamp, reverse=True)[:limit]
        return web.json_response({"data": [{k: v for k, v in self._media_fields(m).items() if k in fields or k == "id"}
                                           for m in rows]})

    @staticmethod
    def _media_fields(m: FakeMedia) -> dict[str, Any]:
        return {"id": m.id, "caption": m.caption, "media_type": "VIDEO", "media_product_type": "REELS",
                "timestamp": m.timestamp.strftime("%Y-%m-%dT%H:%M:%S+0000"),
                "permalink": f"https://www.instagram.com/reel/R{m.id}/"}

    async def node(self, request: web.Request) -> web.Response:
        node_id = request.match_info["id"]
        fields = (request.query.get("fields") or "id").split(",")
        if node_id == IG_USER_ID:
            return web.json_response({"id": IG_USER_ID, "username": self.username})
        if node_id in self.containers:
            c = self.containers[node_id]
            self._advance(c)
            answer: dict[str, Any] = {"id": c.id, "status_code": c.status}
            if "status" in fields:
                answer["status"] = c.error if c.status == "ERROR" else f"{c.status.title()}: {c.status}"
            if "video_status" in fields:
                self.calls["video_status"] += 1
                answer["video_status"] = self._video_status(c)
            return web.json_response(answer)
        if node_id in self.media:
            return web.json_response({k: v for k, v in self._media_fields(self.media[node_id]).items()
                                      if k in fields or k == "id"})
        return self._unknown("node", node_id)

    @staticmethod
    def _video_status(c: FakeContainer) -> dict[str, Any]:
        """A video's phases as Graph reports them; ``bytes_transferred`` is where a resumed upload starts."""
        whole = c.file_size is not None and len(c.received) == c.file_size
        uploading = "complete" if whole else "in_progress" if c.received else "not_started"
        processing = {"IN_PROGRESS": "in_progress" if whole else "not_started", "ERROR": "error"}.get(c.status, "complete")
        return {"uploading_phase": {"status": uploading, "bytes_transferred": len(c.received)},
                "processing_phase": {"status": processing}}

    def _advance(self, c: FakeContainer) -> None:
        if c.status != "IN_PROGRESS" or c.file_size is None or len(c.received) != c.file_size:
            return
        c.polls_after_upload += 1
        if c.polls_after_upload <= self.processing_polls:
            return
        if self.error_status:
            c.status, c.error, self.error_status = "ERROR", self.error_status, None
        elif self.expire_next:
            c.status, self.expire_next = "EXPIRED", False
        else:
            c.status = "FINISHED"

    async def insights(self, request: web.Request) -> web.Response:
        media = self.media.get(request.match_info["id"])
        if media is None:
            return self._unknown("insights", request.match_info["id"])
        asked = [m for m in (request.query.get("metric") or "").split(",") if m]
        bad = [m for m in asked if m not in METRICS]
        if bad or not asked:
            return self._error("insights", 400, 100, f"(#100) metric[0] must be one of the following values: "
                                                     f"{', '.join(sorted(METRICS))}")
        counts = self.figures.get(media.id, {})
        return web.json_response({"data": [{"name": m, "period": "lifetime", "values": [{"value": counts.get(m, 0)}],
                                            "title": m.title(), "id": f"{media.id}/insights/{m}/lifetime"}
                                           for m in asked]})

    def _unknown(self, endpoint: str, node_id: str) -> web.Response:
        return self._error(endpoint, 400, 100, f"Unsupported get request. Object with ID '{node_id}' does not exist, "
                                               "cannot be loaded due to missing permissions, or does not support "
                                               "this operation", subcode=33, kind="GraphMethodException")
