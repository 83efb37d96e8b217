"""Delivery: what HeyGen made, downloaded at once (its links expire), checked, squared, joined and written."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from avatar_daemon import GaveUp, Progress, RenderError, RenderRequest, RenderResult, TryAgain, retrying

from . import media
from .answers import HeyGenError, Video
from .client import LinkExpired
from .plan import Plan
from .settings import HeyGenSettings

if TYPE_CHECKING:
    from .client import HeyGenClient


async def deliver(client: "HeyGenClient", cfg: HeyGenSettings, request: RenderRequest, plan: Plan,
                  videos: list[Video], progress: Progress, waited: float) -> RenderResult:
    out = request.output_dir
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.iterdir())
    try:
        return await _place(client, cfg, request, plan, videos, progress, waited, out)
    except OSError as exc:  # a full disk, most often: nothing half-written may pose as a result
        for path in set(out.iterdir()) - before:
            path.unlink(missing_ok=True)
        where = exc.filename or out
        reason = (exc.strerror or str(exc)).lower()
        raise RenderError(f"cannot write {where}: {reason}; nothing was kept (HeyGen's video is kept "
                          "there: a retry downloads it again without paying twice)") from None


async def _place(client: "HeyGenClient", cfg: HeyGenSettings, request: RenderRequest, plan: Plan,
                 videos: list[Video], progress: Progress, waited: float, out: Path) -> RenderResult:
    progress(96, "downloading from HeyGen")
    files = [await _download(client, cfg, v, out, i if len(videos) > 1 else None, request.captions)
             for i, v in enumerate(videos)]
    video = out / "video.mp4"
    srt_texts = [f["srt"].read_text(encoding="utf-8-sig") if f.get("srt") else "" for f in files]
    if len(files) > 1:
        starts = await asyncio.to_thread(media.concat, [f["video"] for f in files], video)
        for f in files:
            f["video"].unlink()
    else:
        starts = [0.0]
        files[0]["video"].replace(video)
    if plan.square:
        progress(98, f"making the square cut ({plan.square})")
        source = video.with_name("heygen-16x9.mp4")
        video.replace(source)
        pad = request.background.value if request.background.type != "image" else "#000000"
        await asyncio.to_thread(media.square, source, video, request.format.width, plan.square, pad)
        source.unlink()
    duration = await asyncio.to_thread(media.probe, video)
    srt = vtt = None
    if any(srt_texts):
        text = media.join_srt(srt_texts, starts) if len(files) > 1 else srt_texts[0]
        srt = await asyncio.to_thread(_write_whole, out / "video.srt", text)
        vtt = await asyncio.to_thread(_write_whole, out / "video.vtt", media.srt_to_vtt(text))
    for f in files:
        if f.get("srt") and f["srt"] != srt:
            f["srt"].unlink(missing_ok=True)
    thumbnail = files[0].get("thumbnail")
    metadata = await asyncio.to_thread(_write_whole, out / "metadata.json", json.dumps({
        "renderer": "heygen", "title": request.script.title, "script": request.script.text,
        "description": request.script.description, "hashtags": request.script.hashtags,
        "format": request.format.name, "avatar": request.avatar.id, "duration": round(duration, 2),
        "heygen": {"api": plan.api, "video_ids": [v.video_id for v in videos], "rendered_as": plan.source_aspect,
                   "square": plan.square, "parts": len(videos), "notes": plan.notes,
                   "waited_seconds": round(waited, 1)},
    }, indent=2, ensure_ascii=False))
    return RenderResult(video=video, thumbnail=thumbnail, srt=srt, vtt=vtt, metadata=metadata,
                        duration=duration, external_id=",".join(v.video_id or "" for v in videos),
                        video_url=videos[0].video_url if len(videos) == 1 else None)


async def _download(client: "HeyGenClient", cfg: HeyGenSettings, video: Video, out: Path, index: int | None,
                    captions: bool) -> dict[str, Path]:
    """Video, thumbnail and subtitles; an expired link is replaced by one status call and tried again."""
    suffix = "" if index is None else f".part-{index}"
    wanted = {"video": out / f"heygen{suffix}.mp4", "thumbnail": out / f"thumbnail{suffix}.jpg",
              "srt": out / f"heygen{suffix}.srt"}
    got: dict[str, Path] = {}
    stale = False

    async def attempt() -> None:
        nonlocal video, stale
        if stale:
            video = await client.get_video(video.video_id)  # every status call signs fresh links
            stale = False
        urls = {"video": (captions and video.captioned_video_url) or video.video_url,
                "thumbnail": video.thumbnail_url, "srt": video.subtitle_url}
        try:
            for name, dest in wanted.items():
                if name not in got and urls[name]:
                    await client.download(urls[name], dest, cfg.max_download_bytes)
                    got[name] = dest
        except LinkExpired:
            stale = True
            raise TryAgain("expired", after=0.0) from None
        except HeyGenError as exc:
            if exc.code != "network":
                raise
            raise TryAgain("network") from exc  # a dropped connection: try again

    try:
        await retrying(attempt, retries=2, base_delay=cfg.backoff_seconds)
    except GaveUp as exc:
        if exc.last.__cause__ is not None:
            raise exc.last.__cause__ from None
        raise RenderError(f"HeyGen's download links for video {video.video_id} kept expiring") from None
    if "video" not in got:
        raise RenderError(f"HeyGen reported video {video.video_id} completed without a video URL")
    await asyncio.to_thread(media.probe, got["video"])
    return got


def _write_whole(path: Path, text: str) -> Path:
    """Under a temporary name, synced, then renamed: a full disk leaves no truncated file in place."""
    part = path.with_name(path.name + ".part")
    try:
        with part.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    part.replace(path)
    return path
