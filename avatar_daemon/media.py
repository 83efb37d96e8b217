"""Media for a render (backgrounds, logos, talking photos, narration): where its bytes may come from.

One resolver for every interface, so the rule cannot differ between them:

- A remote caller (HTTP, Slack, the web page) names media by URL only (an uploaded asset
  later). The daemon fetches it when the request arrives: an allowed scheme, every address
  the host resolves to public (checked after DNS and again on every redirect), at most a few
  redirects, a size cap and a time limit, and bytes that really are the image, video or audio
  named. The file is kept under its content hash and the job refers to it, so a bad URL is a
  422 at once and a render never fetches anything.
- A trusted local caller (the CLI, inbox files, templates) may also name a file, but only one
  inside the assets folder or the inbox. What a refusal says never depends on whether the
  named file exists outside them.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import re
import socket
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import aiohttp
import av
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from PIL import Image
from yarl import URL

from .errors import InvalidRequest
from .models import Background, Brand, MediaFile, VideoTemplate

if TYPE_CHECKING:
    from .settings import MediaSettings, Settings

Kind = Literal["image", "video", "audio"]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# What a job may name besides its background, and the kind of media each must be.
FILES: dict[str, Kind] = {"narration": "audio", "talking_photo": "image"}
# A request's own logo (an upload, never a template's trusted path): drawn in the brand's corner.
LOGO = "brand_logo"
ROLES: dict[str, Kind] = {**FILES, LOGO: "image"}
IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}
REDIRECTS = (301, 302, 303, 307, 308)
CACHED_NAME = re.compile(r"^[0-9a-f]{64}\.[a-z0-9]{2,4}$")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
CHUNK = 64 * 1024


class Refused(Exception):
    """Media we will not use; the message is the reason, in words, without the URL (it may hold a token)."""


def address_allowed(ip: IpAddress, allow: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Public unicast only, unless the operator listed the network; an IPv4 inside IPv6 is judged as itself."""
    if any(ip.version == net.version and ip in net for net in allow):
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is None and ip in NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            return address_allowed(inner, allow)
    return ip.is_global and not ip.is_multicast


class _GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default, then refuses a host if any of its addresses is not allowed.

    The connector connects only to the addresses returned here, so a DNS answer that changes
    between our check and the connection (rebinding) cannot slip through.
    """

    def __init__(self, allow: list) -> None:
        self._inner = DefaultResolver()
        self._allow = allow

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            if not address_allowed(ipaddress.ip_address(result["host"].split("%")[0]), self._allow):
                raise Refused(f"{host} resolves to {result['host']}, which is not a public address")
        return results

    async def close(self) -> None:
        await self._inner.close()


def probe(path: Path, kind: Kind, max_pixels: int) -> str:
    """The file's extension if its bytes are the kind named, else Refused: nothing unprobed reaches a render."""
    if kind == "image":
        return _probe_image(path, max_pixels)
    return _probe_av(path, kind, max_pixels)


def _probe_image(path: Path, max_pixels: int) -> str:
    try:
        # Named formats only: Pillow would otherwise try every plugin (EPS even runs Ghostscript).
        with Image.open(path, formats=list(IMAGE_FORMATS)) as img:
            w, h = img.size
            if w * h > max_pixels:
                raise Refused(f"the image is {w}x{h} pixels; the limit is {max_pixels:,} pixels")
            img.load()
            return IMAGE_FORMATS[img.format]
    except Refused:
        raise
    except Exception:  # bytes from outside: any decoder complaint means "not an image"
        raise Refused(f"the bytes are not a {', '.join(IMAGE_FORMATS)} image") from None


def _container(head: bytes, kind: Kind) -> tuple[str, str] | None:
    """(FFmpeg demuxer, extension) from the first bytes. The demuxer is forced: left to guess, FFmpeg
    would also take playlists (HLS, concat) that make it open other files and URLs."""
    if head[4:8] == b"ftyp":
        return "mov", "mp4" if kind == "video" else "m4a"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska", "mkv" if kind == "video" else "mka"
    if kind == "audio":
        if head[:4] == b"OggS":
            return "ogg", "ogg"
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            return "wav", "wav"
        if head[:4] == b"fLaC":
            return "flac", "flac"
        if head[:3] == b"ID3" or (head[:1] == b"\xff" and head[1:2] and head[1] & 0xE0 == 0xE0):
            return "mp3", "mp3"
    return None


def _probe_av(path: Path, kind: Kind, max_pixels: int) -> str:
    with open(path, "rb") as f:
        head = f.read(16)
    found = _container(head, kind)
    names = "an MP4, MOV or Matroska video" if kind == "video" else "MP4/M4A, Ogg, WAV, FLAC, MP3 or Matroska audio"
    if found is None:
        raise Refused(f"the bytes are not {names}")
    demuxer, ext = found
    try:
        with av.open(str(path), format=demuxer, options={"protocol_whitelist": "file"}) as box:
            streams = box.streams.video if kind == "video" else box.streams.audio
            if not streams:
                raise Refused(f"the file has no {kind} stream")
            if kind == "video":  # before decoding: one frame of a giant video is itself too much memory
                w, h = streams[0].codec_context.width, streams[0].codec_context.height
                if w * h > max_pixels:
                    raise Refused(f"the video is {w}x{h} pixels; the limit is {max_pixels:,} pixels")
            if next(iter(box.decode(streams[0])), None) is None:
                raise Refused(f"the file's {kind} stream has nothing to decode")
    except Refused:
        raise
    except Exception:
        raise Refused(f"the bytes are not {names} that can be decoded") from None
    return ext


class UploadedAssets(Protocol):
    """What resolving needs of the uploads (`assets.Uploads`): one asset, if the workspace may use it."""

    def usable(self, asset_id: str, workspace: str | None) -> Any: ...


class MediaResolver:
    """Turns the media a request names into files on this machine, by the caller's trust."""

    def __init__(self, settings: "Settings", uploads: "UploadedAssets | None" = None):
        self.cfg: "MediaSettings" = settings.media
        self.cache = settings.data_dir / "media"
        self.assets = settings.assets_dir
        self.inbox = settings.inbox.path
        self._limit = asyncio.Semaphore(self.cfg.concurrency)
        self.uploads = uploads  # assets.py builds on this module's probes, so it is handed in

    # ---- at arrival ------------------------------------------------------------------------

    async def settle(self, options: dict[str, Any], *, remote: bool, workspace: str | None = None) -> dict[str, Any]:
        """`options` as a job keeps them, plus `media`: where each file it names is, fetched and probed now.

        `workspace` is the requester's: the only one whose uploads (asset ids) it may name.
        Raises InvalidRequest naming the field (`background.url`, `narration.asset_id`, ...).
        """
        media: dict[str, dict[str, str]] = {}
        background = options.get("background")
        if background and background.get("type") in ("image", "video"):
            media["background"] = await self._obtain("background", MediaFile(
                url=background.get("url"), asset_id=background.get("asset_id"), path=background.get("path")),
                background["type"], remote, workspace)
        for role, kind in ROLES.items():
            if options.get(role):
                media[role] = await self._obtain(role, MediaFile.model_validate(options[role]), kind, remote,
                                                 workspace)
        return {**options, "media": media} if media else options

    async def _obtain(self, role: str, source: MediaFile, kind: Kind, remote: bool,
                      workspace: str | None) -> dict[str, str]:
        if source.asset_id is not None:
            if self.uploads is None:
                raise InvalidRequest(role, "uploaded assets are not available here")
            asset = self.uploads.usable(source.asset_id, workspace)
            if asset is None:  # the same words for another workspace's upload as for none
                where = f"workspace {workspace}" if workspace else "this workspace"
                raise InvalidRequest(f"{role}.asset_id", f"no asset {source.asset_id!r} in {where}")
            if asset.kind != kind:
                raise InvalidRequest(f"{role}.asset_id", f"asset {asset.asset_id} is {asset.kind}; "
                                                         f"{role.replace('_', ' ')} needs {kind}")
            return {"cached": asset.file}
        if source.path is not None:
            if remote:
                raise InvalidRequest(f"{role}.path", "a remote caller cannot name a file on the server; "
                                                     "give an https url instead")
            path = self.allowed_file(source.path, f"{role}.path")
            await self._probe(path, kind, f"{role}.path")
            return {"local": str(path)}
        try:
            return {"cached": await self.fetch(source.url or "", kind)}
        except Refused as exc:
            raise InvalidRequest(f"{role}.url", str(exc)) from None

    def allowed_file(self, name: str, field: str) -> Path:
        """A trusted caller's file: relative to the assets folder, and inside it or the inbox once
        symlinks are followed. The refusal is the same whether or not a file outside them exists."""
        raw = Path(name).expanduser()
        real = (raw if raw.is_absolute() else self.assets / raw).resolve()
        if not any(real.is_relative_to(root.resolve()) for root in (self.assets, self.inbox)):
            raise InvalidRequest(field, f"local media must be a file inside the assets folder ({self.assets}) "
                                        f"or the inbox ({self.inbox})")
        if not real.is_file():
            raise InvalidRequest(field, f"no file {name!r} in the assets folder or the inbox")
        return real

    async def _probe(self, path: Path, kind: Kind, field: str) -> str:
        if path.stat().st_size > self.cfg.max_bytes:
            raise InvalidRequest(field, f"the file is over the {self.cfg.max_bytes:,}-byte limit")
        try:
            return await asyncio.to_thread(probe, path, kind, self.cfg.max_pixels)
        except Refused as exc:
            raise InvalidRequest(field, str(exc)) from None

    async def fetch(self, url: str, kind: Kind) -> str:
        """Download, probe and cache `url`; its cache file's name (the content's SHA-256), or Refused."""
        cfg = self.cfg
        self.cache.mkdir(parents=True, exist_ok=True)
        part = self.cache / f".{uuid.uuid4().hex}.part"
        try:
            async with self._limit, asyncio.timeout(cfg.timeout_seconds):
                digest = await self._download(url, part)
            ext = await asyncio.to_thread(probe, part, kind, cfg.max_pixels)
            name = f"{digest}.{ext}"
            os.replace(part, self.cache / name)  # same bytes, same name: a second fetch just lands on the first
            return name
        except TimeoutError:
            raise Refused(f"the download took longer than {cfg.timeout_seconds:g} s") from None
        finally:
            part.unlink(missing_ok=True)

    async def _download(self, url: str, into: Path) -> str:
        cfg = self.cfg
        connector = aiohttp.TCPConnector(resolver=_GuardedResolver(cfg.allow_networks), use_dns_cache=False)
        async with aiohttp.ClientSession(connector=connector, trust_env=False) as http:
            current = self._checked(url)
            for _ in range(cfg.max_redirects + 1):
                try:
                    async with http.get(current, allow_redirects=False,
                                        headers={"User-Agent": "avatar-daemon media fetch"}) as resp:
                        if resp.status in REDIRECTS:
                            location = resp.headers.get("Location")
                            if not location:
                                raise Refused(f"{current.host} answered a redirect without a Location")
                            current = self._checked(current.join(URL(location)))
                            continue
                        if resp.status != 200:
                            raise Refused(f"{current.host} answered HTTP {resp.status}")
                        return await self._save(resp, into)
                except aiohttp.ClientError as exc:
                    raise Refused(f"{current.host} could not be fetched ({type(exc).__name__})") from None
                except ValueError:
                    raise Refused("the redirect's Location is not a valid URL") from None
            raise Refused(f"more than {cfg.max_redirects} redirects")

    async def _save(self, resp: aiohttp.ClientResponse, into: Path) -> str:
        limit = self.cfg.max_bytes
        if resp.content_length is not None and resp.content_length > limit:
            raise Refused(f"the file is {resp.content_length:,} bytes; the limit is {limit:,}")
        digest, size = hashlib.sha256(), 0
        with open(into, "wb") as out:
            async for chunk in resp.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise Refused(f"the file is over the {limit:,}-byte limit")
                digest.update(chunk)
                out.write(chunk)
        return digest.hexdigest()

    def _checked(self, url: str | URL) -> URL:
        """Scheme, host and literal addresses; names are checked by the resolver, hop by hop."""
        try:
            parsed = url if isinstance(url, URL) else URL(url)
        except (ValueError, TypeError):
            raise Refused("not a valid URL") from None
        if parsed.scheme not in self.cfg.schemes:
            raise Refused(f"only {' and '.join(self.cfg.schemes)} URLs are fetched, not {parsed.scheme or 'this'}")
        if not parsed.host:
            raise Refused("the URL names no host")
        if parsed.user or parsed.password:
            raise Refused("the URL carries a user name or password")
        try:
            literal = ipaddress.ip_address(parsed.host.split("%")[0])
        except ValueError:
            return parsed
        if not address_allowed(literal, self.cfg.allow_networks):
            raise Refused(f"{parsed.host} is not a public address")
        return parsed

    # ---- at render -------------------------------------------------------------------------

    def for_render(self, settings: dict[str, Any], template: VideoTemplate | None) -> dict[str, Any]:
        """The RenderRequest's media fields, as local files only: the job's own, else its template's."""
        media = settings.get("media") or {}
        own = settings.get("background")
        background = Background.model_validate(own or (template.background.model_dump() if template else {}))
        if background.type in ("image", "video"):
            path = self.file(media.get("background")) if own else \
                self.allowed_file(background.path or "", f"template {template.id}: background.path")
            background = background.model_copy(update={"url": None, "asset_id": None,
                                                       "path": str(path) if path else None})
        brand = Brand.model_validate(settings.get("brand") or (template.brand.model_dump() if template else {}))
        if brand.logo:
            brand = brand.model_copy(update={"logo": str(self.allowed_file(brand.logo, "brand.logo"))})
        if media.get(LOGO):  # the request's own logo over its template's, in the template's corner
            brand = brand.model_copy(update={"logo": str(self.file(media[LOGO]))})
        music = (self.allowed_file(template.music, f"template {template.id}: music")
                 if template and template.music else None)  # a template author's file, as trusted as a logo
        return {"background": background, "brand": brand, "music": music,
                **{role: self.file(media.get(role)) for role in FILES}}

    def file(self, ref: dict[str, str] | None) -> Path | None:
        """Where a settled media reference's file is on this machine (also for the photo check at arrival)."""
        if not ref:
            return None
        if "cached" in ref and CACHED_NAME.match(ref["cached"]):
            return self.cache / ref["cached"]
        return self.allowed_file(ref.get("local", ""), "media")
