"""Local files a HeyGen video needs (a background image or clip), uploaded once per content, ever."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from avatar_daemon import RenderRequest

if TYPE_CHECKING:
    from .client import HeyGenClient


class Uploads:
    """HeyGen's URL for each local file, remembered in the store by the file's hash across restarts."""

    def __init__(self, daemon: Any, client: Callable[[], "HeyGenClient"]):
        self.daemon = daemon
        self._client = client
        self._urls: dict[str, str] = {}

    def url(self, path: str) -> str:
        """The uploaded URL, or a placeholder naming the file (a dry run uploads nothing)."""
        return self._urls.get(path, f"<upload of {path}>")

    async def upload_for(self, request: RenderRequest) -> None:
        for path in local_assets(request):
            await self._upload(path)

    async def _upload(self, path: str) -> None:
        if path in self._urls:
            return
        local = Path(path)
        data = await asyncio.to_thread(local.read_bytes)
        key = f"heygen.asset.{hashlib.sha256(data).hexdigest()}"
        url = await self.daemon.store.get_meta(key)
        if not url:
            asset = await self._client().upload_asset(local, data)
            url = asset.url or asset.id
            await self.daemon.store.set_meta(key, url)
        self._urls[path] = url


def local_assets(request: RenderRequest) -> list[str]:
    bg = request.background
    if bg.type in ("image", "video") and bg.path and not bg.path.startswith(("http://", "https://")):
        return [bg.path]
    return []
