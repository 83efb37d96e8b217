"""A web server on loopback that serves media the way real hosts do, and a few that misbehave.

Real image, video and audio bytes (made here with Pillow, PyAV and wave), redirects,
declared and undeclared sizes, a stalled answer and plain text pretending to be an image.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import struct
import wave
from dataclasses import dataclass, field
from typing import AsyncIterator

import av
import numpy as np
from aiohttp import web
from PIL import Image


def png_bytes(size: tuple[int, int] = (48, 27), colour: tuple[int, int, int] = (200, 30, 60)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def mp4_bytes(frames: int = 6, size: int = 32) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as box:
        stream = box.add_stream("mpeg4", rate=12)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for n in range(frames):
            img = np.full((size, size, 3), (n * 40) % 255, np.uint8)
            box.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        box.mux(stream.encode())
    return out.getvalue()


def wav_bytes(seconds: float = 0.5, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 10))) for i in range(int(seconds * rate))))
    return out.getvalue()


@dataclass
class MediaServer:
    host: str = "127.0.0.1"
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator["MediaServer"]:
        self.files.update({
            "/bg.png": (png_bytes(), "image/png"),
            "/clip.mp4": (mp4_bytes(), "video/mp4"),
            "/voice.wav": (wav_bytes(), "audio/wav"),
            "/not-an-image.png": (b"<html>this is a web page, not an image</html>", "image/png"),
            "/playlist.mp4": (b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n", "video/mp4"),
        })
        app = web.Application()
        app.router.add_get("/redirect/{n}/{target:.*}", self._redirect)
        app.router.add_get("/to", self._to)
        app.router.add_get("/big", self._big)
        app.router.add_get("/stream/{size}", self._stream)
        app.router.add_get("/stall", self._stall)
        app.router.add_get("/{name:.*}", self._file)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self.release.set()
            await runner.cleanup()

    async def _file(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        if request.path not in self.files:
            return web.Response(status=404, text="no such file")
        body, content_type = self.files[request.path]
        return web.Response(body=body, content_type=content_type)

    async def _redirect(self, request: web.Request) -> web.Response:
        """/redirect/3/bg.png answers three redirects in a row, then the file."""
        self.hits.append(request.path)
        n, target = int(request.match_info["n"]), request.match_info["target"]
        raise web.HTTPFound(f"/redirect/{n - 1}/{target}" if n > 1 else f"/{target}")

    async def _to(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        raise web.HTTPFound(request.query["url"])

    async def _big(self, request: web.Request) -> web.StreamResponse:
        """Declares a size far over any limit; sends nothing until told to."""
        self.hits.append(request.path)
        resp = web.StreamResponse(headers={"Content-Length": str(10**12), "Content-Type": "image/png"})
        await resp.prepare(request)
        await self.release.wait()
        return resp

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        """`size` bytes, chunked, with no Content-Length: only counting tells how big it is."""
        self.hits.append(request.path)
        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        left = int(request.match_info["size"])
        while left > 0:
            await resp.write(b"\0" * min(left, 4096))
            left -= 4096
        await resp.write_eof()
        return resp

    async def _stall(self, request: web.Request) -> web.StreamResponse:
        """Headers, then silence until the test ends."""
        self.hits.append(request.path)
        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        await resp.prepare(request)
        await self.release.wait()
        return resp
