"""Avatar previews (a still and a 3-second clip) made by a renderer that can, cached on disk.

Pickers (Slack's modal, the HTTP API's /avatars) need an image URL for every profile, not
only those a remote catalogue describes; the local renderer draws them on first request.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from .catalogue import Catalogue
from .errors import UnknownNameError
from .hookspecs import DrawsPreviews

log = logging.getLogger(__name__)

KINDS = {"jpg": "image/jpeg", "mp4": "video/mp4"}


class AvatarPreviews:
    def __init__(self, catalogue: Catalogue, folder: Path):
        self.catalogue = catalogue
        self.folder = folder
        self._lock = asyncio.Lock()  # one preview render at a time: they share the CPU with real jobs

    def available(self) -> bool:
        return any(isinstance(r, DrawsPreviews) for r in self.catalogue.renderers)

    def urls(self, base: str | None) -> dict[str, tuple[str | None, str | None]]:
        """(image, clip) URL of every profile: a renderer catalogue's (HeyGen's looks) first, else the ones
        drawn here and served under `base` ("" for relative links; None when ours are not reachable)."""
        remote: dict[str, tuple[str | None, str | None]] = {}
        for renderer in self.catalogue.renderers:
            for p in renderer.list_avatars():
                if p.preview_image_url or p.preview_video_url:
                    remote.setdefault(p.id, (p.preview_image_url, p.preview_video_url))
        ours = base is not None and self.available()
        out = {}
        for avatar_id in self.catalogue.settings.avatars:
            image, clip = remote.get(avatar_id, (None, None))
            own = f"{(base or '').rstrip('/')}/avatars/{avatar_id}/preview" if ours else None
            out[avatar_id] = (image or (own and own + ".jpg"), clip or (own and own + ".mp4"))
        return out

    async def path(self, avatar_id: str, kind: str) -> Path:
        """The cached file, drawn first if needed; UnknownNameError for an unknown profile or kind."""
        avatar = self.catalogue.avatar(avatar_id)
        if kind not in KINDS:
            raise UnknownNameError(f"no preview of kind {kind!r} (known: {', '.join(KINDS)})")
        target = self.folder / f"{avatar.id}.{kind}"
        if target.is_file():
            return target
        renderer = next((r for r in self.catalogue.renderers if isinstance(r, DrawsPreviews)), None)
        if renderer is None:
            raise UnknownNameError("no renderer here can draw previews")
        async with self._lock:
            if not target.is_file():
                self.folder.mkdir(parents=True, exist_ok=True)
                await asyncio.to_thread(renderer.preview, avatar, self.folder)
                log.info("preview of avatar %s drawn", avatar.id)
        return target

    async def warm(self) -> None:
        """Draw every missing preview, one by one, so the first picker to ask finds them ready."""
        for avatar_id in self.catalogue.settings.avatars:
            await self.path(avatar_id, "jpg")
