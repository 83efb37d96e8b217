"""A fake HeyGen on 127.0.0.1 that follows ../shared/reference/heygen.md, for tests and benchmarks.

It keeps HeyGen's documented behaviour where our client depends on it: the three error
envelopes, Idempotency-Key replay (and 409 while the first request is in flight),
videos moving pending -> waiting -> processing -> completed|failed over time, fresh
presigned links on every status call that answer 403 once expired (downloads that stall or
break when told to), signed webhooks to registered endpoints (sometimes twice, sometimes
never), a per-key concurrency cap
answered with 429 + Retry-After, 429 storms (rate and concurrency limits, with
Retry-After) on any endpoint, and a count and the times of every call by endpoint.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import hmac
import itertools
import json
import random
import secrets
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import av
import numpy as np
from aiohttp import web

API_KEY = "hg-test-key-0123456789"


def make_mp4(path: Path, width: int, height: int, seconds: float = 2.0, fps: int = 25) -> Path:
    """A small real H.264 + AAC file, like HeyGen's output but tiny."""
    with av.open(str(path), "w", format="mp4") as out:
        v = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        a = out.add_stream("aac", rate=44100)
        a.layout = "mono"
        for i in range(int(seconds * fps)):
            img = np.full((height, width, 3), (i * 7) % 255, dtype=np.uint8)
            img[height // 4: height * 3 // 4, width // 3: width * 2 // 3] = (200, 120, 60)
            out.mux(v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        samples = int(seconds * 44100)
        t = np.arange(samples) / 44100
        pcm = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32).reshape(1, -1)
        for start in range(0, samples, 1024):
            frame = av.AudioFrame.from_ndarray(pcm[:, start:start + 1024], format="fltp", layout="mono")
            frame.sample_rate = 44100
            frame.pts = start
            frame.time_base = Fraction(1, 44100)
            out.mux(a.encode(frame))
        out.mux(v.encode(None))
        out.mux(a.encode(None))
    return path


@dataclass
class FakeVideo:
    id: str
    body: dict[str, Any]
    created: float
    render_seconds: float
    status: str = "pending"
    fail: str | None = None
    finished: float | None = None
    aspect: str = "16:9"


@dataclass
class FakeHeyGen:
    """Knobs are plain attributes so a test can change behaviour mid-run."""

    media_dir: Path
    render_seconds: float = 0.5          # per video (or `seconds_per_char` * len(script))
    seconds_per_char: float = 0.0
    render_jitter: float = 0.0           # each render takes render_seconds * uniform(1 - j, 1 + j)
    concurrency: int = 10                # videos rendering at once per key
    over_cap: str = "429"                # "429" (v3) or "queue" (v2: excess waits as pending)
    retry_after: float = 0.2
    webhook_duplicate: float = 0.0       # chance a webhook is sent twice
    webhook_drop: float = 0.0            # chance it is never sent
    link_ttl: float = 3600.0
    broken_downloads: int = 0            # this many file downloads are cut off mid-body
    stalled_downloads: int = 0           # this many file downloads wait `stall_seconds` before answering
    stall_seconds: float = 5.0
    stale_links: int = 0                 # this many completed-status answers carry already-expired links
    create_delay: float = 0.0            # seconds between recording a create and answering it
    storm: float = 0.0                   # chance an API call is refused with 429 (rate or concurrency limit)
    storm_endpoints: set[str] | None = None   # the endpoints the storm hits; None: every API endpoint
    fail_marker: str | None = "FAIL"     # a script containing this renders to `failed`
    hold: asyncio.Event | None = None    # set: videos stay `processing` until the event is set
    quota: float = 36000.0
    seed: int = 1
    calls: collections.Counter = field(default_factory=collections.Counter)
    call_times: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    storm_hits: collections.Counter = field(default_factory=collections.Counter)
    videos: dict[str, FakeVideo] = field(default_factory=dict)
    idempotent: dict[str, Any] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    webhooks_sent: list[dict[str, Any]] = field(default_factory=list)
    fail_next: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)   # (endpoint, status, body)
    looks: dict[str, dict[str, Any]] = field(default_factory=dict)
    voices: list[dict[str, Any]] = field(default_factory=list)
    uploads: list[bytes] = field(default_factory=list)
    v3_assets: dict[str, bytes] = field(default_factory=dict)   # POST /v3/assets, by asset id
    max_rendering_seen: int = 0
    stalls: int = 0                      # downloads stalled so far

    @classmethod
    def knowing_bundled_profiles(cls, media_dir: Path, **knobs) -> "FakeHeyGen":
        """An account that owns the looks and voices the bundled avatar profiles name, as a real
        account would list them; a create naming anything else is refused."""
        from avatar_daemon.settings import load_settings

        server = cls(media_dir, **knobs)
        profiles = load_settings(None, environ={}).avatars.values()
        server.looks = {p.renderer_ids["heygen"]: {"id": p.renderer_ids["heygen"], "name": p.name} for p in profiles}
        server.voices = [{"voice_id": v, "type": "public"} for v in sorted({p.voice_ids["heygen"] for p in profiles})]
        return server

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.ids = itertools.count(1)
        self.port: int | None = None
        self.tasks: set[asyncio.Task] = set()
        self.files = {"16:9": make_mp4(self.media_dir / "landscape.mp4", 320, 180),
                      "9:16": make_mp4(self.media_dir / "portrait.mp4", 180, 320)}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- plumbing --------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=50 * 1024 * 1024, middlewares=[self._auth])
        r = app.router
        r.add_post("/v3/videos", self.create_video)
        r.add_get("/v3/videos", self.list_videos)
        r.add_get("/v3/videos/{id}", self.get_video)
        r.add_post("/v2/video/generate", self.studio_generate)
        r.add_get("/v3/avatars/looks/{id}", self.avatar_look)
        r.add_get("/v3/voices", self.list_voices)
        r.add_get("/v2/user/remaining_quota", self.remaining_quota)
        r.add_post("/v1/asset", self.upload_asset)
        r.add_post("/v3/assets", self.create_asset)
        r.add_post("/v3/webhooks/endpoints", self.create_endpoint)
        r.add_get("/v3/webhooks/endpoints", self.list_endpoints)
        r.add_post("/v3/webhooks/endpoints/{id}/rotate-secret", self.rotate_endpoint)
        r.add_post("/v2/template/{id}/generate", self.template_generate)
        r.add_get("/files/{id}/{name}", self.file)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        name = request.match_info.route.handler.__name__ if request.match_info.route else "unknown"
        self.calls[name] += 1
        self.call_times[name].append(time.monotonic())
        if request.path.startswith("/files/"):
            return await handler(request)
        if request.headers.get("x-api-key") != API_KEY:
            return web.json_response({"error": {"code": "invalid_api_key", "message": "Invalid API key"}}, status=401)
        if self.storm and (self.storm_endpoints is None or name in self.storm_endpoints) \
                and self.rng.random() < self.storm:
            self.storm_hits[name] += 1
            code, message = self.rng.choice([("rate_limit_exceeded", "Too many requests"),
                                             ("concurrent_limit_exceeded", "Too many concurrent jobs")])
            return web.json_response({"error": {"code": code, "message": message}}, status=429,
                                     headers={"Retry-After": str(self.retry_after)})
        for i, (endpoint, status, body) in enumerate(self.fail_next):
            if endpoint == name:
                del self.fail_next[i]
                headers = {"Retry-After": str(self.retry_after)} if status == 429 else {}
                return web.json_response(body, status=status, headers=headers)
        return await handler(request)

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator["FakeHeyGen"]:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port or 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.session = aiohttp.ClientSession()
        try:
            yield self
        finally:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await self.session.close()
            await runner.cleanup()

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def rendering(self) -> int:
        return sum(v.status in ("pending", "waiting", "processing") for v in self.videos.values())

    # ---- videos ------------------------------------------------------------------------

    async def create_video(self, request: web.Request) -> web.Response:
        body = await request.json()
        refusal = self._check_v3(body)
        if refusal:
            status, param, message = refusal
            code = "avatar_not_found" if status == 404 else "asset_not_found" if status == 422 else "invalid_parameter"
            error = {"code": code, "message": message, **({"param": param} if param else {})}
            return web.json_response({"error": error}, status=404 if status == 422 else status)
        return await self._create(request, body, body["script"], body["aspect_ratio"])

    def _check_v3(self, body: dict[str, Any]) -> tuple[int, str | None, str] | None:
        """What HeyGen documents for CreateVideoFromAvatar and CreateVideoFromImage, as (status, param, message).

        Avatar IV is the default engine; Avatar V only for looks whose supported_api_engines lists
        it (a 400 otherwise), never for `type: image`, and without expressiveness. expressiveness
        and motion_prompt are for photo avatars and images only.
        """
        kind = body.get("type", "avatar")
        if kind not in ("avatar", "image"):
            return 400, "type", "type must be 'avatar' or 'image'"
        subject = "avatar_id" if kind == "avatar" else "image"
        for name in (subject, "voice_id", "script"):
            if not body.get(name):
                return 400, name, f"{name} is required"
        other = "image" if kind == "avatar" else "avatar_id"
        if other in body:
            return 400, other, f"{other} is not allowed with type {kind}"
        if body.get("aspect_ratio") not in ("16:9", "9:16"):
            return 400, "aspect_ratio", "aspect_ratio must be 16:9 or 9:16"
        engine = body.get("engine", {"type": "avatar_iv"})
        if not isinstance(engine, dict) or engine.get("type") not in ("avatar_iv", "avatar_v") or len(engine) != 1:
            return 400, "engine", "engine must be {\"type\": \"avatar_iv\"} or {\"type\": \"avatar_v\"}"
        if body.get("expressiveness") not in (None, "high", "medium", "low"):
            return 400, "expressiveness", "expressiveness must be one of high, medium, low"
        motion = [n for n in ("expressiveness", "motion_prompt") if n in body]
        look = None
        if kind == "image":
            image = body["image"]
            fields = {"asset_id": "asset_id", "url": "url"}
            if not isinstance(image, dict) or image.get("type") not in fields or not image.get(fields[image["type"]]) \
                    or set(image) != {"type", fields[image["type"]]}:
                return 400, "image", "image must be {\"type\": \"asset_id\", \"asset_id\"} or {\"type\": \"url\", \"url\"}"
            if image["type"] == "asset_id" and image["asset_id"] not in self.v3_assets:
                return 422, "image", f"Asset {image['asset_id']} not found"
            if engine["type"] == "avatar_v":
                return 400, "engine", "Avatar V does not support image input; use Avatar IV"
        else:
            if self.looks and body["avatar_id"] not in self.looks:
                return 404, None, f"Avatar {body['avatar_id']} not found"
            look = self.looks.get(body["avatar_id"], {})
            kind_of_look = look.get("avatar_type")
            if motion and kind_of_look and kind_of_look != "photo_avatar":
                return 400, motion[0], f"{motion[0]} is only supported for photo avatars"
            if engine["type"] == "avatar_v" and "avatar_v" not in look.get("supported_api_engines", []):
                return 400, "engine", f"Avatar {body['avatar_id']} does not support the avatar_v engine"
        if engine["type"] == "avatar_v" and "expressiveness" in body:
            return 400, "expressiveness", "expressiveness is not supported by Avatar V"
        return None

    async def studio_generate(self, request: web.Request) -> web.Response:
        body = await request.json()
        inputs = body.get("video_inputs") or []
        if not 1 <= len(inputs) <= 50:
            return web.json_response({"error": {"code": "invalid_parameter",
                                                "message": "video_inputs must contain between 1 to 50 items"}},
                                     status=400)
        text = " ".join(i.get("voice", {}).get("input_text", "") for i in inputs)
        d = body.get("dimension") or {}
        aspect = "9:16" if d.get("height", 0) > d.get("width", 1) else "16:9"
        return await self._create(request, body, text, aspect, envelope="v2")

    async def _create(self, request, body, text, aspect, envelope="v3") -> web.Response:
        key = request.headers.get("Idempotency-Key")
        if key and key in self.idempotent:
            answer = self.idempotent[key]
            if answer is None:
                return web.json_response({"error": {"code": "request_in_progress",
                                                    "message": "A request with this key is in progress"}}, status=409)
            return web.json_response(answer)
        if self.over_cap == "429" and self.rendering() >= self.concurrency:
            return web.json_response({"error": {"code": "concurrent_limit_exceeded",
                                                "message": "Too many concurrent jobs"}},
                                     status=429, headers={"Retry-After": str(self.retry_after)})
        if key:
            self.idempotent[key] = None
        video = FakeVideo(id=f"{next(self.ids):032x}", body=body, created=time.monotonic(), aspect=aspect,
                          render_seconds=(self.render_seconds + self.seconds_per_char * len(text))
                          * self.rng.uniform(1 - self.render_jitter, 1 + self.render_jitter))
        if self.fail_marker and self.fail_marker in text:
            video.fail = "Video is too long"
        self.videos[video.id] = video
        self.max_rendering_seen = max(self.max_rendering_seen, self.rendering())
        self._spawn(self._render(video))
        answer = ({"data": {"video_id": video.id, "status": "waiting", "output_format": "mp4"}} if envelope == "v3"
                  else {"error": None, "data": {"video_id": video.id}})
        if key:
            self.idempotent[key] = answer
        if self.create_delay:
            await asyncio.sleep(self.create_delay)  # created already: a client that gives up now has lost the id
        return web.json_response(answer)

    async def _render(self, video: FakeVideo) -> None:
        while self.over_cap == "queue" and sum(
                v.status in ("waiting", "processing") for v in self.videos.values()) >= self.concurrency:
            await asyncio.sleep(0.02)
        video.status = "waiting" if self.rng.random() < 0.5 else "processing"
        await asyncio.sleep(video.render_seconds * 0.2)
        video.status = "processing"
        await asyncio.sleep(video.render_seconds * 0.8)
        if self.hold is not None:
            await self.hold.wait()
        video.status = "failed" if video.fail else "completed"
        video.finished = time.monotonic()
        await self._webhook(video)

    async def _webhook(self, video: FakeVideo) -> None:
        if not self.endpoints or self.rng.random() < self.webhook_drop:
            return
        kind = "avatar_video.fail" if video.fail else "avatar_video.success"
        data = {"video_id": video.id, "callback_id": video.body.get("callback_id"), "folder_id": None}
        data.update({"msg": video.fail} if video.fail else {"url": self._link(video, "video.mp4")})
        body = json.dumps({"event_type": kind, "event_data": data}).encode()
        times = 2 if self.rng.random() < self.webhook_duplicate else 1
        for endpoint in list(self.endpoints.values()):
            if endpoint["events"] and kind not in endpoint["events"]:
                continue
            sig = hmac.new(endpoint["secret"].encode(), body, hashlib.sha256).hexdigest()
            for _ in range(times):
                try:
                    async with self.session.post(endpoint["url"], data=body, headers={
                            "signature": sig, "content-type": "application/json"}) as resp:
                        self.webhooks_sent.append({"video_id": video.id, "status": resp.status})
                except aiohttp.ClientError:
                    self.webhooks_sent.append({"video_id": video.id, "status": 0})

    def _link(self, video: FakeVideo, name: str, stale: bool = False) -> str:
        expires = time.time() + (-1 if stale else self.link_ttl)
        return f"{self.url}/files/{video.id}/{name}?Expires={expires:.3f}&Signature={secrets.token_hex(4)}"

    def _video_json(self, video: FakeVideo) -> dict[str, Any]:
        data: dict[str, Any] = {"id": video.id, "status": video.status, "callback_id": video.body.get("callback_id"),
                                "video_url": None, "thumbnail_url": None, "subtitle_url": None,
                                "captioned_video_url": None, "duration": None}
        if video.status == "processing":
            data["progress"] = 50
        if video.status == "completed":
            stale = self.stale_links > 0
            self.stale_links -= stale
            data.update(video_url=self._link(video, "video.mp4", stale),
                        thumbnail_url=self._link(video, "thumb.jpg", stale),
                        subtitle_url=self._link(video, "captions.srt", stale), duration=2.0,
                        completed_at=time.time() - (time.monotonic() - video.finished))
            if isinstance(video.body.get("caption"), dict) and video.body["caption"].get("style"):
                data["captioned_video_url"] = self._link(video, "captioned.mp4")
        if video.status == "failed":
            data.update(failure_code="40119", failure_message=video.fail)
        return data

    async def get_video(self, request: web.Request) -> web.Response:
        video = self.videos.get(request.match_info["id"])
        if video is None:
            return web.json_response({"error": {"code": "not_found", "message": "Video not found"}}, status=404)
        return web.json_response({"data": self._video_json(video)})

    async def list_videos(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", 20))
        ids = sorted(self.videos)
        start = int(request.query.get("token", 0))
        page = ids[start:start + limit]
        more = start + limit < len(ids)
        return web.json_response({"data": [self._video_json(self.videos[i]) for i in page], "has_more": more,
                                  "next_token": str(start + limit) if more else None})

    async def file(self, request: web.Request) -> web.StreamResponse:
        video = self.videos.get(request.match_info["id"])
        if video is None or float(request.query.get("Expires", 0)) < time.time():
            return web.Response(status=403, text="<Error><Code>AccessDenied</Code>Request has expired</Error>")
        name = request.match_info["name"]
        if self.stalled_downloads > 0:  # a slow CDN: the client waiting on it may be gone before it answers
            self.stalled_downloads -= 1
            self.stalls += 1
            await asyncio.sleep(self.stall_seconds)
        if self.broken_downloads > 0:
            self.broken_downloads -= 1
            resp = web.StreamResponse(headers={"Content-Length": "100000"})
            await resp.prepare(request)
            await resp.write(b"\0" * 1000)
            request.transport.close()  # the connection drops with most of the body unsent
            return resp
        if name in ("video.mp4", "captioned.mp4"):
            return web.FileResponse(self.files[video.aspect])
        if name == "thumb.jpg":
            return web.Response(body=b"\xff\xd8\xff\xe0fake-jpeg", content_type="image/jpeg")
        text = video.body.get("script") or "caption"
        return web.Response(text=f"1\n00:00:00,000 --> 00:00:01,500\n{text[:40]}\n\n"
                                 f"2\n00:00:01,500 --> 00:00:02,000\nend\n", content_type="text/plain")

    # ---- catalogue, quota, assets, templates ----------------------------------------------

    async def avatar_look(self, request: web.Request) -> web.Response:
        look = self.looks.get(request.match_info["id"])
        if look is None:
            return web.json_response({"error": {"code": "not_found", "message": "Avatar look not found"}}, status=404)
        return web.json_response({"data": look})

    async def list_voices(self, request: web.Request) -> web.Response:
        voices = [v for v in self.voices if v.get("type", "public") == request.query.get("type", "public")]
        start = int(request.query.get("token", 0))
        limit = int(request.query.get("limit", 20))
        more = start + limit < len(voices)
        return web.json_response({"data": voices[start:start + limit], "has_more": more,
                                  "next_token": str(start + limit) if more else None})

    async def remaining_quota(self, request: web.Request) -> web.Response:
        return web.json_response({"error": None, "data": {"remaining_quota": self.quota,
                                                          "details": {"api": self.quota}}})

    async def upload_asset(self, request: web.Request) -> web.Response:
        data = await request.read()
        self.uploads.append(data)
        asset_id = hashlib.md5(data).hexdigest()
        return web.json_response({"code": 100, "data": {"id": asset_id, "name": asset_id,
                                                        "file_type": request.content_type,
                                                        "url": f"{self.url}/assets/{asset_id}"},
                                  "msg": None, "message": None})

    async def create_asset(self, request: web.Request) -> web.Response:
        """v3 uploads: multipart with one `file` field, PNG/JPEG/MP4/WebM/MP3/WAV/PDF, at most 32 MB."""
        if not request.content_type.startswith("multipart/"):
            return web.json_response({"error": {"code": "invalid_parameter", "param": "file",
                                                "message": "send the file as multipart/form-data"}}, status=400)
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return web.json_response({"error": {"code": "invalid_parameter", "param": "file",
                                                "message": "file is required"}}, status=400)
        data = upload.file.read()
        kinds = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg"}
        mime = next((m for magic, m in kinds.items() if data.startswith(magic)), None)
        if mime is None or len(data) > 32 * 1024 * 1024:
            return web.json_response({"error": {"code": "invalid_parameter", "param": "file",
                                                "message": "unsupported file type or over 32 MB"}}, status=400)
        asset_id = "ast_" + hashlib.md5(data).hexdigest()[:16] + f"{len(self.v3_assets):04d}"
        self.v3_assets[asset_id] = data
        return web.json_response({"data": {"asset_id": asset_id, "url": f"{self.url}/assets/{asset_id}",
                                           "mime_type": mime, "size_bytes": len(data)}})

    async def template_generate(self, request: web.Request) -> web.Response:
        body = await request.json()
        text = json.dumps(body.get("variables", {}))
        return await self._create(request, body, text, "16:9", envelope="v2")

    # ---- webhook endpoints -------------------------------------------------------------------

    async def create_endpoint(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:  # HeyGen checks the receiver with OPTIONS and a 1-second timeout
            async with self.session.options(body["url"], timeout=aiohttp.ClientTimeout(total=1)) as resp:
                ok = resp.status < 400
        except (aiohttp.ClientError, asyncio.TimeoutError):
            ok = False
        if not ok:
            return web.json_response({"error": {"code": "invalid_parameter", "param": "url",
                                                "message": "The endpoint did not answer the OPTIONS check"}},
                                     status=400)
        endpoint = {"endpoint_id": secrets.token_hex(8), "url": body["url"], "events": body.get("events") or [],
                    "status": "enabled", "secret": "whsec_" + secrets.token_urlsafe(24)}
        self.endpoints[endpoint["endpoint_id"]] = endpoint
        return web.json_response({"data": endpoint})

    async def list_endpoints(self, request: web.Request) -> web.Response:
        public = [{k: v for k, v in e.items() if k != "secret"} for e in self.endpoints.values()]
        return web.json_response({"data": public, "has_more": False, "next_token": None})

    async def rotate_endpoint(self, request: web.Request) -> web.Response:
        endpoint = self.endpoints.get(request.match_info["id"])
        if endpoint is None:
            return web.json_response({"error": {"code": "not_found", "message": "Endpoint not found"}}, status=404)
        endpoint["secret"] = "whsec_" + secrets.token_urlsafe(24)
        return web.json_response({"data": endpoint})

    def status_calls_per_video(self) -> float:
        return self.calls["get_video"] / max(1, len(self.videos))
