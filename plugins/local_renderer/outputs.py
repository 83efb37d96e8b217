"""A render's files under temporary names, moved into place together only when every one is complete.

A full disk must never leave a truncated MP4 or an empty caption file posing as a result:
each output is written to `<name>.part`, flushed and synced (some filesystems report a
full disk only then), the MP4 is reopened and read to its last packet, and only then are
they all renamed into place, which needs no free space. On failure every `.part` goes.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
from pathlib import Path
from typing import IO, Any, Iterator

import av

from avatar_daemon import RenderError


def write_failure(path: Path, exc: BaseException) -> RenderError:
    """One sentence naming the file and the reason: "cannot write …/video.mp4: no space left on device"."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code in errno.errorcode:
        reason = os.strerror(code).lower()
    else:
        reason = str(exc) or type(exc).__name__
    return RenderError(f"cannot write {path}: {reason}; nothing was kept")


class Outputs:
    def __init__(self, folder: Path):
        self.folder = folder
        self.parts: dict[str, Path] = {}
        self._made_folder = not folder.exists()

    def final(self, name: str) -> Path:
        return self.folder / name

    def part(self, name: str) -> Path:
        """The temporary path of output `name`; a leftover from a crash is simply overwritten."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{name}.part"
        self.parts[name] = path
        return path

    def open(self, name: str) -> IO[bytes]:
        with self.writing(name):
            return open(self.part(name), "w+b")

    @contextlib.contextmanager
    def writing(self, name: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise write_failure(self.final(name), exc) from None

    def write_text(self, name: str, text: str) -> None:
        self._write(name, lambda f: f.write(text.encode("utf-8")))

    def save_jpeg(self, name: str, image: Any, quality: int = 88) -> None:
        encoded = io.BytesIO()  # encoded in memory: Pillow writes to a file's descriptor behind Python's back
        image.save(encoded, format="JPEG", quality=quality)
        self._write(name, lambda f: f.write(encoded.getbuffer()))

    def _write(self, name: str, fill) -> None:
        with self.writing(name), open(self.part(name), "wb") as f:
            fill(f)
            sync(f)

    def commit(self) -> dict[str, Path]:
        """Rename every part into place; if one rename fails, none of the outputs stays."""
        placed: dict[str, Path] = {}
        try:
            for name, part in self.parts.items():
                with self.writing(name):
                    part.replace(self.final(name))
                placed[name] = self.final(name)
        except BaseException:
            for path in placed.values():
                path.unlink(missing_ok=True)
            raise
        self.parts.clear()
        return placed

    def discard(self) -> None:
        """Remove every part (never a finished file of an earlier render), and the folder if we made it empty."""
        for part in self.parts.values():
            part.unlink(missing_ok=True)
        self.parts.clear()
        if self._made_folder:
            with contextlib.suppress(OSError):
                self.folder.rmdir()


def sync(f: IO[bytes]) -> None:
    f.flush()
    os.fsync(f.fileno())


def verify_mp4(path: Path, shown_as: Path, frames: int) -> None:
    """Reopen the file and read every packet: a clean close is not proof when the disk filled under it."""
    try:
        with av.open(str(path)) as box:
            if not box.streams.video or not box.streams.audio:
                raise RenderError(f"{shown_as} was written without its video or audio stream")
            video = sum(1 for p in box.demux(box.streams.video[0]) if p.size)
    except av.FFmpegError as exc:
        raise RenderError(f"{shown_as} cannot be read back after writing ({exc}); the disk may be full "
                          "or failing, and nothing was kept") from None
    if video != frames:
        raise RenderError(f"{shown_as} holds {video} of the {frames} frames written; the disk may be full or "
                          "failing, and nothing was kept")
