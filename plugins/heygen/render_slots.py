"""HeyGen's per-key render cap, kept on our side: a create waits for a free render instead of paying for 429s.

HeyGen renders a few videos per key at once (pay-as-you-go 10; v2 plans 1, 3 or 6) and refuses
a create past that with 429. The daemon's job slots are freed as soon as a job is submitted, so
without this it would keep creating while HeyGen is full and every refusal is one more call.
A video counts from its create until a status look (any caller's) finds it finished; one we did
not create here (a job resumed after a restart, another node's) counts from the first look that
finds it unfinished. One lost track of (a job cancelled mid-render) stops counting after
`forget_after` seconds. Counted per node: several nodes on one key split the cap between them
(heygen.account_concurrency), and a 429 from a cap overrun is still waited out by the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import AsyncIterator

FINISHED = {"completed", "failed"}


class RenderSlots:
    def __init__(self, cap: int, forget_after: float):
        self.cap = cap
        self.forget_after = forget_after
        self.rendering: dict[str, float] = {}  # video id -> when we first knew it was rendering
        self._creating = 0
        self._changed = asyncio.Condition()

    def busy(self) -> int:
        cutoff = time.monotonic() - self.forget_after
        for video_id in [v for v, since in self.rendering.items() if since < cutoff]:
            del self.rendering[video_id]
        return len(self.rendering) + self._creating

    @contextlib.asynccontextmanager
    async def create(self, deadline: float | None) -> AsyncIterator["Created"]:
        """Held around one create call: waits for a free render (until `deadline`, monotonic), then
        counts the video the call names as rendering."""
        async with self._changed:
            while self.busy() >= self.cap:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"HeyGen was rendering {self.cap} videos for this key until the job's "
                                       "deadline (heygen.account_concurrency, heygen.deadline_seconds)")
                # Woken by a finish; the periodic look lets forgotten renders expire.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(left, 60.0) if left is not None else 60.0):
                        await self._changed.wait()
            self._creating += 1
        created = Created()
        try:
            yield created
        finally:
            self._creating -= 1
            if created.video_id:
                self.rendering.setdefault(created.video_id, time.monotonic())
            await self._notify()

    async def seen(self, video_id: str, status: str | None) -> None:
        """A status look: a finished video frees its render; an unfinished one we did not know of takes one."""
        if status in FINISHED:
            if self.rendering.pop(video_id, None) is not None:
                await self._notify()
        elif status:
            self.rendering.setdefault(video_id, time.monotonic())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


class Created:
    """What a create call reports back to its slot: the video id HeyGen gave it."""

    video_id: str | None = None
