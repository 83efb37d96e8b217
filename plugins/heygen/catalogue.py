"""HeyGen's avatars and voices as our profiles use them, checked and cached on disk.

Each profile's look is fetched by id (a handful of calls) rather than paging through
every public look; voices have no by-id call, so they are paged once per sync.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from avatar_daemon import AvatarProfile

from .answers import HeyGenError

if TYPE_CHECKING:
    from .client import HeyGenClient

log = logging.getLogger(__name__)


def renders(profile: AvatarProfile) -> bool:
    """A look HeyGen has, or a talking photo's portrait we upload and HeyGen animates as an image."""
    return bool(profile.renderer_ids.get("heygen")
                or (profile.avatar_type == "talking_photo" and profile.photo and profile.voice_ids.get("heygen")))


class Catalogue:
    def __init__(self, path: Path):
        self.path = path
        self._data: dict[str, Any] | None = None

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            try:
                self._data = json.loads(self.path.read_text())
            except (OSError, ValueError):
                self._data = {"synced_at": 0, "looks": {}, "voices": {}}
        return self._data

    def age_hours(self) -> float:
        return (time.time() - self.data.get("synced_at", 0)) / 3600

    def decorate(self, profiles: Iterable[AvatarProfile]) -> list[AvatarProfile]:
        looks = self.data.get("looks", {})
        out = []
        for p in profiles:
            look = looks.get(p.renderer_ids.get("heygen", ""), {})
            out.append(p.model_copy(update={
                "preview_image_url": look.get("preview_image_url") or p.preview_image_url,
                "preview_video_url": look.get("preview_video_url") or p.preview_video_url}))
        return out

    async def sync(self, client: "HeyGenClient", profiles: Iterable[AvatarProfile]) -> list[str]:
        """Fetch, check every profile against HeyGen, save; returns one problem line per broken profile."""
        problems: list[str] = []
        looks: dict[str, Any] = {}
        profiles = list(profiles)
        for profile in profiles:
            look_id = profile.renderer_ids.get("heygen")
            if not look_id:
                if not renders(profile):
                    problems.append(f"avatar profile {profile.id!r}: no renderer_ids.heygen, so HeyGen cannot "
                                    "render it")
                continue
            if look_id not in looks:
                try:
                    look = await client.avatar_look(look_id)
                except HeyGenError as exc:
                    if exc.status == 404:
                        problems.append(f"avatar profile {profile.id!r}: HeyGen has no avatar look {look_id!r}")
                        continue
                    raise
                looks[look_id] = look.model_dump(include={"id", "name", "avatar_type", "gender", "preview_image_url",
                                                          "preview_video_url", "default_voice_id",
                                                          "supported_api_engines"})
            problems += look_problems(profile, looks[look_id])
        voices = {v.voice_id: v.model_dump(include={"voice_id", "name", "language", "gender", "preview_audio_url"})
                  for kind in ("public", "private") for v in await client.voices(kind)}
        for profile in profiles:
            voice_id = profile.voice_ids.get("heygen")
            if (profile.renderer_ids.get("heygen") or profile.avatar_type == "talking_photo") and not voice_id:
                problems.append(f"avatar profile {profile.id!r}: no voice_ids.heygen")
            elif voice_id and voice_id not in voices:
                problems.append(f"avatar profile {profile.id!r}: HeyGen has no voice {voice_id!r}")
        self._data = {"synced_at": time.time(), "looks": looks, "voices": voices, "problems": problems}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._data, indent=1))
        os.replace(tmp, self.path)
        return problems


def look_problems(profile: AvatarProfile, look: dict[str, Any]) -> list[str]:
    """A talking photo whose look is not a photo avatar, or an engine the look does not offer."""
    problems = []
    kind = look.get("avatar_type")
    if profile.avatar_type == "talking_photo" and kind and kind != "photo_avatar":
        problems.append(f"avatar profile {profile.id!r} is a talking photo, but HeyGen look {look['id']!r} is a "
                        f"{kind}, not a photo_avatar")
    engines = look.get("supported_api_engines") or []
    if profile.engine and profile.engine != "avatar_iv" and profile.engine not in engines:
        problems.append(f"avatar profile {profile.id!r}: HeyGen look {look['id']!r} does not support engine "
                        f"{profile.engine} (it supports: {', '.join(engines) or 'none listed'})")
    return problems
