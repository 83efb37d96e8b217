"""A fake OpenAI-compatible chat-completions server on 127.0.0.1, for the LLM writer's tests.

It follows the documented shapes (OpenAI's API reference, which Ollama, llama.cpp's server and
vLLM mirror under /v1): POST /v1/chat/completions with `model` and `messages`; a
`chat.completion` object, or with `"stream": true` server-sent events of
`chat.completion.chunk` objects whose `choices[0].delta.content` add up, ended by
`data: [DONE]`; errors as `{"error": {"message", "type", "param", "code"}}` with their HTTP
status, and Retry-After on 429. Each call takes the next scripted `Reply`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Reply:
    content: str = ""
    status: int = 200
    message: str = ""                 # the error's message, for a status other than 200
    retry_after: str | None = None
    hold: asyncio.Event | None = None  # answer only once this is set (a slow model)


@dataclass
class FakeLLM:
    replies: list[Reply]
    api_key: str | None = None
    requests: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.completions)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1"

    async def close(self) -> None:
        await self.runner.cleanup()

    async def __aenter__(self) -> str:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @staticmethod
    def error(status: int, message: str, kind: str, code: str | None = None,
              headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response({"error": {"message": message, "type": kind, "param": None, "code": code}},
                                 status=status, headers=headers)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        self.headers.append(dict(request.headers))
        self.arrived.set()
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self.error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        try:
            body = await request.json()
        except ValueError:
            return self.error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
        self.requests.append(body)
        messages = body.get("messages")
        if not isinstance(body.get("model"), str) or not isinstance(messages, list) or not all(
                isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
                and isinstance(m.get("content"), str) for m in messages):
            return self.error(400, "'model' and 'messages' are required.", "invalid_request_error")
        if not self.replies:
            return self.error(500, "The fake has no more replies scripted.", "server_error")
        reply = self.replies.pop(0)
        if reply.hold is not None:
            await reply.hold.wait()
        if reply.status != 200:
            kind = {429: "rate_limit_exceeded"}.get(reply.status, "server_error" if reply.status >= 500
                                                    else "invalid_request_error")
            headers = {"Retry-After": reply.retry_after} if reply.retry_after is not None else None
            return self.error(reply.status, reply.message or "error", kind, headers=headers)
        base = {"id": f"chatcmpl-{len(self.requests)}", "created": int(time.time()), "model": body["model"]}
        if not body.get("stream"):
            return web.json_response({**base, "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": reply.content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)

        async def send(delta: dict, finish: str | None = None) -> None:
            chunk = {**base, "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await resp.write(b": keep-alive\n\n")
        await send({"role": "assistant", "content": ""})
        words = reply.content.split(" ")
        for n in range(0, len(words), 3):  # a few words a chunk, as a model streams tokens
            await send({"content": " ".join(words[n:n + 3]) + (" " if n + 3 < len(words) else "")})
        await send({}, "stop")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
