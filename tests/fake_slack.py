"""A fake Slack on 127.0.0.1: the Web API methods the bot calls, response_url, and a Socket Mode server.

It answers like ../shared/reference/slack.md says Slack does: `{"ok": true, ...}` or
`{"ok": false, "error": ...}`, 429 with Retry-After when asked to, the three-step
external file upload, and Socket Mode's hello / envelopes / acks / disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from aiohttp import WSMsgType, web


@dataclass
class FakeSlack:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)      # posts to response_url
    uploads: dict[str, bytes] = field(default_factory=dict)
    rate_limited: dict[str, int] = field(default_factory=dict)          # method -> how many 429s to give
    retry_after: int = 1
    acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    connections: int = 0

    def __post_init__(self) -> None:
        self.port: int | None = None
        self.ts = itertools.count(1)
        self.sockets: list[web.WebSocketResponse] = []
        self.connected = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def called(self, method: str) -> list[dict[str, Any]]:
        return [params for m, params in self.calls if m == method]

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator["FakeSlack"]:
        app = web.Application(client_max_size=200 * 1024 * 1024)
        app.router.add_post("/api/{method}", self.api)
        app.router.add_post("/upload/{file_id}", self.upload)
        app.router.add_post("/response/{id}", self.response_url)
        app.router.add_get("/socket", self.socket)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            for ws in self.sockets:
                await ws.close()
            await runner.cleanup()

    # ---- Web API -------------------------------------------------------------------------------

    async def api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)  # the SDK sends some methods' params in the query string
        if request.content_type == "application/json":
            params.update(await request.json())
        else:
            params.update(await request.post())
        self.calls.append((method, params))
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return web.json_response({"ok": False, "error": "not_authed"})
        if self.rate_limited.get(method):
            self.rate_limited[method] -= 1
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(self.retry_after)})
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        return web.json_response(handler(params))

    def m_auth_test(self, p):
        return {"ok": True, "url": "https://example.slack.com/", "team": "Example", "user": "avatarbot",
                "team_id": "T0EXAMPLE", "user_id": "UBOT", "bot_id": "BBOT"}

    def m_chat_postMessage(self, p):
        return {"ok": True, "channel": p.get("channel"), "ts": f"{time.time():.0f}.{next(self.ts):06d}",
                "message": {"text": p.get("text")}}

    def m_chat_update(self, p):
        return {"ok": True, "channel": p.get("channel"), "ts": p.get("ts"), "text": p.get("text")}

    def m_chat_postEphemeral(self, p):
        return {"ok": True, "message_ts": f"{time.time():.6f}"}

    def m_views_open(self, p):
        return {"ok": True, "view": {"id": "V" + uuid.uuid4().hex[:8].upper()}}

    def m_views_update(self, p):
        return {"ok": True, "view": {"id": p.get("view_id")}}

    def m_files_getUploadURLExternal(self, p):
        file_id = "F" + uuid.uuid4().hex[:9].upper()
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def m_files_completeUploadExternal(self, p):
        files = json.loads(p["files"]) if isinstance(p.get("files"), str) else p.get("files")
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}

    def m_files_info(self, p):
        return {"ok": True, "file": {"id": p.get("file"), "shares": {}}}

    def m_apps_connections_open(self, p):
        self.connections += 1
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket?n={self.connections}"}

    async def upload(self, request: web.Request) -> web.Response:
        reader = await request.multipart() if request.content_type.startswith("multipart/") else None
        if reader is not None:
            part = await reader.next()
            data = await part.read()
        else:
            data = await request.read()
        self.uploads[request.match_info["file_id"]] = data
        return web.Response(text=f"OK - {len(data)}")

    async def response_url(self, request: web.Request) -> web.Response:
        self.responses.append(await request.json())
        return web.Response(text="ok")

    # ---- Socket Mode ------------------------------------------------------------------------------

    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1,
                            "connection_info": {"app_id": "A0APP"}, "debug_info": {"host": "fake"}})
        self.connected.set()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                data = json.loads(msg.data)
                if "envelope_id" in data:
                    self.acks[data["envelope_id"]] = data.get("payload") or {}
        return ws

    async def envelope(self, kind: str, payload: dict[str, Any], retry_attempt: int = 0) -> str:
        """Send a Socket Mode envelope on the newest connection; returns its id."""
        envelope_id = str(uuid.uuid4())
        await self.sockets[-1].send_json({"envelope_id": envelope_id, "type": kind, "payload": payload,
                                          "accepts_response_payload": kind != "events_api",
                                          "retry_attempt": retry_attempt, "retry_reason": ""})
        return envelope_id

    async def disconnect(self) -> None:
        """What Slack does every few hours: ask the client to reconnect, then drop the connection."""
        self.connected.clear()
        ws = self.sockets[-1]
        await ws.send_json({"type": "disconnect", "reason": "refresh_requested",
                            "debug_info": {"host": "fake"}})
        await asyncio.sleep(0.1)
        await ws.close()
