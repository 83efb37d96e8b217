"""A fake Slack on 127.0.0.1: the Web API methods the bot calls, response_url, and Socket Mode.

It answers like Slack's reference pages say Slack does: `{"ok": true, ...}` or
`{"ok": false, "error": ...}`, 429 with Retry-After when asked to, the three-step
external file upload; Socket Mode is in fake_slack_socket.py. A test can also hold a
method's answers (`held`) to see what the bot does while a call is on its way.
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

from aiohttp import web

from tests.fake_slack_socket import SocketMode


@dataclass
class FakeSlack:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)      # posts to response_url
    uploads: dict[str, bytes] = field(default_factory=dict)
    rate_limited: dict[str, int] = field(default_factory=dict)          # method -> how many 429s to give
    retry_after: int = 1
    held: dict[str, asyncio.Event] = field(default_factory=dict)        # method -> answered once set
    socket: SocketMode = field(default_factory=SocketMode)

    def __post_init__(self) -> None:
        self.port: int | None = None
        self.ts = itertools.count(1)

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
        app.router.add_get("/link/", self.socket.link)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.socket.base = f"ws://127.0.0.1:{self.port}"
        try:
            yield self
        finally:
            for gate in self.held.values():
                gate.set()
            await self.socket.close_all()
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
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not token or token == request.headers.get("Authorization", ""):
            return web.json_response({"ok": False, "error": "not_authed"})
        if (method == "apps.connections.open") != token.startswith("xapp-"):  # only app tokens open sockets
            return web.json_response({"ok": False, "error": "not_allowed_token_type"})
        if method in self.held:
            await self.held[method].wait()
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
        return self.socket.open()

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
