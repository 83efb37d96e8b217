"""TikTok's FILE_UPLOAD chunk rules (media transfer guide), as a plan of byte ranges.

Files under 5 MiB go whole; otherwise every chunk is ``chunk_size`` (5-64 MiB) but the last, which
takes the trailing bytes (up to 128 MiB); ``total_chunk_count`` is ``floor(video_size / chunk_size)``;
1 to 1000 chunks, sent in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from avatar_daemon import PublishError

MiB = 1024 * 1024
MIN_CHUNK = 5 * MiB
MAX_CHUNK = 64 * MiB
MAX_FINAL_CHUNK = 128 * MiB
MAX_CHUNKS = 1000


@dataclass(frozen=True)
class ChunkPlan:
    video_size: int
    chunk_size: int
    total_chunk_count: int

    def span(self, index: int) -> tuple[int, int]:
        """(first byte, one past the last byte) of chunk ``index``."""
        first = index * self.chunk_size
        last = self.video_size if index == self.total_chunk_count - 1 else first + self.chunk_size
        return first, last


def plan(video_size: int, preferred: int) -> ChunkPlan:
    """The chunks for a file of ``video_size`` bytes, ``preferred`` bytes each where the rules allow."""
    if video_size <= 0:
        raise PublishError("the video file is empty, so there is nothing to send to TikTok")
    if video_size < MIN_CHUNK:
        return ChunkPlan(video_size, video_size, 1)
    size = min(max(preferred, MIN_CHUNK), MAX_CHUNK)
    if video_size // size > MAX_CHUNKS:
        size = video_size // (MAX_CHUNKS + 1) + 1  # the least size that makes floor(video_size / size) <= 1000
    if size > MAX_CHUNK:
        raise PublishError(f"the video is {video_size} bytes, more than TikTok's {MAX_CHUNKS} chunks "
                           f"of {MAX_CHUNK // MiB} MiB can carry")
    if video_size <= size:
        return ChunkPlan(video_size, video_size, 1)
    return ChunkPlan(video_size, size, video_size // size)
