"""Local files a HeyGen video needs (a background, a talking photo), uploaded once per content, ever."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from avatar_daemon import RenderRequest

from .plan import photo_path

if TYPE_CHECKING:
    from .client import HeyGenClient


class Uploads:
    """HeyGen's URL (backgrounds) or v3 asset id (photos) for each local file, remembered in the store by the
    file's hash across restarts: the same portrait sent with a hundred videos is uploaded once."""

    def __init__(self, daemon: Any, client: Callable[[], "HeyGenClient"]):
        self.daemon = daemon
        self._client = client
        self._urls: dict[str, str] = {}
        self._ids: dict[str, str] = {}

    def url(self, path: str) -> str:
        """The uploaded URL, or a placeholder naming the file (a dry run uploads nothing)."""
        return self._urls.get(path, f"<upload of {path}>")

    def asset_id(self, path: str) -> str:
        return self._ids.get(path, f"<upload of {path}>")

    async def upload_for(self, request: RenderRequest) -> None:
        for path in local_assets(request):
            await self._upload(path)
        photo = photo_path(request)
        if photo:
            await self._upload_photo(photo)

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

    async def _upload_photo(self, path: str) -> None:
        """Keyed by content, not path: an upload's file name changes, its bytes do not."""
        local = Path(path)
        data = await asyncio.to_thread(local.read_bytes)
        key = f"heygen.v3-asset.{hashlib.sha256(data).hexdigest()}"
        asset_id = await self.daemon.store.get_meta(key)
        if not asset_id:
            asset_id = (await self._client().create_asset(local, data)).asset_id
            await self.daemon.store.set_meta(key, asset_id)
        self._ids[path] = asset_id


def local_assets(request: RenderRequest) -> list[str]:
    bg = request.background
    if bg.type in ("image", "video") and bg.path and not bg.path.startswith(("http://", "https://")):
        return [bg.path]
    return []
