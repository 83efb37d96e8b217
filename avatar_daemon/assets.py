"""Uploaded media (images, videos, audio): kept by content, owned by one workspace, named by id.

An upload is probed like a fetched URL (the bytes must really be the image, video or audio
they claim, within the size and pixel caps) and lands in the same content-addressed cache,
so a render reads it exactly as it reads fetched media. Its record says whose it is: a
request may name an asset of its own workspace only, and one of another workspace is refused
in the same words as one that does not exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator

from .media import CACHED_NAME, ROLES, Kind, Refused, probe

if TYPE_CHECKING:
    from .settings import Settings

ASSET_ID = re.compile(r"^as_[0-9a-f]{24}$")
TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "gif": "image/gif", "bmp": "image/bmp",
         "mp4": "video/mp4", "mkv": "video/x-matroska", "m4a": "audio/mp4", "mka": "audio/x-matroska",
         "ogg": "audio/ogg", "wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg"}
KINDS: tuple[Kind, ...] = ("image", "video", "audio")
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Asset:
    asset_id: str
    kind: Kind
    bytes: int
    sha256: str
    content_type: str
    file: str                  # its name in the media cache
    workspace: str | None
    user: str | None
    filename: str
    created_at: str

    def public(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "file"}


class Uploads:
    def __init__(self, settings: "Settings"):
        self.cache = settings.data_dir / "media"
        self.records = settings.data_dir / "assets"
        self.max_bytes = settings.media.max_bytes
        self.max_pixels = settings.media.max_pixels

    def part_file(self) -> Path:
        self.cache.mkdir(parents=True, exist_ok=True)
        return self.cache / f".{uuid.uuid4().hex}.part"

    async def receive(self, chunks: AsyncIterator[bytes], into: Path) -> tuple[str, int]:
        """Write a stream to `into` under the size cap: (sha256, size), or Refused past the cap."""
        digest, size = hashlib.sha256(), 0
        with open(into, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_bytes:
                    raise Refused(f"the file is over the {self.max_bytes:,}-byte limit")
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise Refused("the file is empty")
        return digest.hexdigest(), size

    async def add(self, part: Path, sha256: str, size: int, *, workspace: str | None, user: str | None,
                  filename: str, now: str) -> Asset:
        """Sniff, cache and record a received file (consumed either way)."""
        try:
            kind, ext = await asyncio.to_thread(self._sniff, part)
            name = f"{sha256}.{ext}"
            os.replace(part, self.cache / name)
        finally:
            part.unlink(missing_ok=True)
        asset = Asset("as_" + secrets.token_hex(12), kind, size, sha256, TYPES[ext], name, workspace, user,
                      re.sub(r"[\x00-\x1f\x7f]", "", Path(filename or "upload").name)[:200], now)
        self.records.mkdir(parents=True, exist_ok=True)
        tmp = self.records / f".{asset.asset_id}.tmp"
        tmp.write_text(json.dumps(asdict(asset)))
        os.replace(tmp, self.records / f"{asset.asset_id}.json")
        return asset

    async def add_file(self, path: Path, *, workspace: str | None, user: str | None, now: str) -> Asset:
        """A local file (the CLI's --narration/--photo) taken in as an upload would be."""
        async def chunks():
            with open(path, "rb") as f:
                while block := f.read(CHUNK):
                    yield block

        part = self.part_file()
        try:
            sha256, size = await self.receive(chunks(), part)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return await self.add(part, sha256, size, workspace=workspace, user=user, filename=path.name, now=now)

    def _sniff(self, path: Path) -> tuple[Kind, str]:
        for kind in KINDS:
            try:
                return kind, probe(path, kind, self.max_pixels)
            except Refused as exc:
                if "pixels" in str(exc):  # it is that kind, only too large
                    raise
        raise Refused("the bytes are not an image (PNG, JPEG, WEBP, GIF, BMP), a video (MP4, MOV, Matroska) or "
                      "audio (M4A, Ogg, WAV, FLAC, MP3)")

    def get(self, asset_id: str) -> Asset | None:
        if not ASSET_ID.match(asset_id or ""):
            return None
        try:
            asset = Asset(**json.loads((self.records / f"{asset_id}.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return asset if CACHED_NAME.match(asset.file) and (self.cache / asset.file).is_file() else None

    def usable(self, asset_id: str, workspace: str | None) -> Asset | None:
        """The asset if this workspace owns it; None alike for another's and for none at all."""
        asset = self.get(asset_id)
        return asset if asset is not None and asset.workspace == workspace else None

    def listed(self, workspace: str | None, everyone: bool = False) -> list[Asset]:
        if not self.records.is_dir():
            return []
        out = [a for a in (self.get(p.stem) for p in self.records.glob("as_*.json")) if a is not None]
        return sorted((a for a in out if everyone or a.workspace == workspace),
                      key=lambda a: (a.created_at, a.asset_id), reverse=True)


async def local_media(uploads: Uploads, now: str, **files: str | None) -> dict[str, dict[str, str]]:
    """The CLI's `--narration FILE` / `--photo FILE` / `--logo FILE`: each file taken in as an upload of no
    workspace, so a render reads it as it reads any other interface's. Keys are the request's fields
    (narration, talking_photo, brand_logo)."""
    from .errors import AvatarDaemonError

    flags = {"narration": "--narration", "talking_photo": "--photo", "brand_logo": "--logo"}
    wanted = ROLES
    out = {}
    for role, name in files.items():
        if not name:
            continue
        path = Path(name).expanduser()
        if not path.is_file():
            raise AvatarDaemonError(f"{flags[role]}: no file {name!r}")
        try:
            asset = await uploads.add_file(path, workspace=None, user=None, now=now)
        except Refused as exc:
            raise AvatarDaemonError(f"{flags[role]}: {name}: {exc}") from None
        if asset.kind != wanted[role]:
            raise AvatarDaemonError(f"{flags[role]}: {name} is {asset.kind}; it must be {wanted[role]}")
        out[role] = {"asset_id": asset.asset_id}
    return out
