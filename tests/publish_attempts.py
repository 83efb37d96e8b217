"""Driving a Publisher the way the publishing service does: attempts of one publication over saved state;
and, for tests through the real service, a finished video and its publication row.

``Record`` keeps what ``Upload.save`` stored between attempts, as the publications table does, so a
test can end an attempt anywhere (``crash_at``: the save of that fact raises, like a kill right after
the platform learnt it) and start the next from what was saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from avatar_daemon import PublishOptions, PublishVideo
from avatar_daemon.models import JobState
from avatar_daemon.publications import read_video
from avatar_daemon.testing import wait_for_final, wait_until
from tests.conftest import fixture_bytes

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=timezone.utc)


class Crash(Exception):
    """The process died here."""


@dataclass(repr=False)
class PlainAccount:
    name: str
    platform: str
    settings: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    def secret(self, key: str) -> str:
        from avatar_daemon import ConfigError
        if key not in self.secrets:
            raise ConfigError([f"account {self.name}: no {key}"])
        return self.secrets[key]


@dataclass
class Record:
    """One publication's saved facts and stages, across attempts."""

    video: PublishVideo
    account: PlainAccount
    options: PublishOptions = field(default_factory=PublishOptions)
    facts: dict[str, Any] = field(default_factory=dict)
    stages: list[str] = field(default_factory=list)
    saves: list[dict[str, Any]] = field(default_factory=list)
    messages: list[tuple[float, str]] = field(default_factory=list)

    def attempt(self, crash_at: str | None = None, crash_when=None) -> "Attempt":
        return Attempt(self, crash_at, crash_when)


class Attempt:
    publication_id = 1

    def __init__(self, record: Record, crash_at: str | None, crash_when):
        self.record = record
        self.video, self.account, self.options = record.video, record.account, record.options
        self.state: dict[str, Any] = dict(record.facts)
        self.crash_at = crash_at
        self.crash_when = crash_when

    async def save(self, stage: str | None = None, **facts: Any) -> None:
        self.record.facts.update(facts)
        self.state.update(facts)
        self.record.saves.append(dict(facts))
        if stage:
            self.record.stages.append(stage)
        if self.crash_at and (self.crash_at in facts or self.crash_at == stage) \
                and (self.crash_when is None or self.crash_when(facts)):
            raise Crash(f"killed after saving {self.crash_at}")

    def progress(self, percent: float, message: str) -> None:
        self.record.messages.append((percent, message))

    def read(self, first: int, end: int, piece: int = 1024 * 1024, sending_to: str | None = None):
        return read_video(self, first, end, piece, sending_to)


def video_file(tmp_path: Path, size: int, *, duration: float = 30.0, title: str = "Rust 2026 in a minute",
               description: str = "What changed, briefly.", hashtags: list[str] | None = None) -> PublishVideo:
    """A file of ``size`` distinct bytes (so a misplaced chunk cannot go unnoticed) as a finished video."""
    path = tmp_path / f"video-{size}.mp4"
    block = bytes(range(256)) * 4096  # 1 MiB of a repeating pattern...
    with open(path, "wb") as f:
        written = 0
        n = 0
        while written < size:
            piece = (n.to_bytes(4, "big") + block)[: size - written]  # ...numbered, so no two MiB are alike
            f.write(piece)
            written += len(piece)
            n += 1
    return PublishVideo(job_id=7, path=path, size=size, format="tiktok", width=1080, height=1920, duration=duration,
                        title=title, description=description, hashtags=hashtags if hashtags is not None else ["rust", "#dev"])


async def finished_video(daemon) -> int:
    job_ids = (await daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "hn.json", ".json")).job_ids
    assert await wait_for_final(daemon, job_ids[0]) is JobState.completed
    return job_ids[0]


async def row_of(daemon, job_id, until):
    async def ready():
        rows = await daemon.publishing.for_video(job_id)
        return rows[0] if rows and until(rows[0]) else None
    return await wait_until(ready, timeout=30)
