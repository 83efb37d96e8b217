"""The small protocols that objects registered by plugins satisfy."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .models import AvatarProfile, JobEvent, RenderRequest, RenderResult, Research, Script

class Progress(Protocol):
    """What a renderer reports through while it works."""

    def __call__(self, percent: float, message: str) -> None:
        """Thread-safe, cheap, callable as often as you like."""

    async def submitting(self, message: str) -> None:
        """Persist `submitting` before a paid remote create, so a crash can never lose track of it."""

    async def submitted(self, external_id: str, **data: Any) -> None:
        """Persist the remote id(s) the moment they are known, so a restart resumes instead of resubmitting."""


@runtime_checkable
class ResearchSource(Protocol):
    name: str

    def detect(self, payload: Any, filename: str) -> float:
        """0.0 = not mine, 1.0 = certainly mine; the highest score wins."""

    def extract(self, payload: Any) -> Research:
        """Raise ResearchError with a sentence when the payload holds nothing usable."""


@runtime_checkable
class ScriptWriter(Protocol):
    name: str

    def write(self, research: Research, template: str, limits: "ScriptLimits") -> Script: ...


class ScriptLimits(Protocol):
    max_seconds: float
    voice_speed: float


@runtime_checkable
class Renderer(Protocol):
    name: str
    max_concurrency: int

    async def render(self, request: RenderRequest, progress: Progress) -> RenderResult: ...

    def list_avatars(self) -> list[AvatarProfile]: ...


@runtime_checkable
class Notifier(Protocol):
    name: str

    async def notify(self, event: JobEvent) -> None: ...


@runtime_checkable
class Service(Protocol):
    name: str

    async def run(self, daemon: Any) -> None:
        """Run until cancelled; release what you hold in `finally`."""
