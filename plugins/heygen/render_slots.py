"""HeyGen's per-key render cap, kept on our side: a create waits for a free render instead of paying for 429s.

HeyGen renders a few videos per key at once (pay-as-you-go 10; v2 plans 1, 3 or 6) and refuses
a create past that with 429. The daemon's job slots are freed as soon as a job is submitted, so
without this it would keep creating while HeyGen is full and every refusal is one more call.

Counted across nodes when there is a store: every node's unfinished HeyGen jobs hold their
saved video ids there, and a status look on any node that finds one finished marks it there
(`remote_finished`), so the count is the ids still rendering (the store's `remote_ids`) for
every node at once. (A count of this node's own creates cannot work with several nodes: any
node checks any job, so the node that created a video may never see it finish.)
What the store cannot see is a create in flight, so a create, and the saving of the id it
returns, happen one at a time across the cluster (the store's `leader` lock; a SQLite store is
one node and always holds it): a count taken under the lock cannot be overtaken by another
node's create. Where a node cannot know better the count errs low: a job cancelled mid-render
stops counting at once, and HeyGen's 429 for that overrun is waited out by the client.

Without a store (a client on its own) the count is this process's: a video counts from its
create until a status look finds it finished; one we did not create counts from the first look
that finds it unfinished; one lost track of (a job cancelled mid-render) stops counting after
`forget_after` seconds. A 429 from a cap overrun (another user of the key) is still waited out
by the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any, AsyncIterator, Awaitable, Callable

FINISHED = {"completed", "failed"}
LOOK_EVERY = 1.0  # seconds between looks at the store while every render is taken (other nodes free them)
# A waiter's look at its own earlier parts: seconds until it wants to look again, None when it has none.
Look = Callable[[], Awaitable[float | None]]


class RenderSlots:
    def __init__(self, cap: int, forget_after: float, store: Any = None, renderer: str = "heygen"):
        self.cap = cap
        self.forget_after = forget_after
        self.store = store
        self.renderer = renderer
        self.rendering: dict[str, float] = {}  # without a store: video id -> when we first knew it was rendering
        self._creating = 0
        self._turn = asyncio.Lock()            # this node's creates, one at a time
        self._changed = asyncio.Condition()

    async def busy(self) -> int:
        if self.store is not None:
            return len(await self.store.remote_ids(self.renderer)) + self._creating
        cutoff = time.monotonic() - self.forget_after
        for video_id in [v for v, since in self.rendering.items() if since < cutoff]:
            del self.rendering[video_id]
        return len(self.rendering) + self._creating

    @contextlib.asynccontextmanager
    async def create(self, deadline: float | None, look: Look | None = None) -> AsyncIterator["Created"]:
        """Held around one create call and the saving of its id: waits for a free render (until
        `deadline`, monotonic), then counts the video the call names as rendering.

        `look` is how a job of several parts sees its own earlier parts finish while it waits: it
        is still submitting, so no scheduled check looks at them, and without it a job with more
        parts than the cap would wait on itself. The wait holds no lock, so every waiter on this
        node keeps looking at its own parts; only the count and the create take turns.
        """
        while True:
            await self._room(deadline, look)
            try:
                async with asyncio.timeout_at(deadline):
                    await self._turn.acquire()
            except TimeoutError:
                raise self._full() from None
            try:
                async with self._cluster_turn() as turn:
                    if not turn.held:  # another node is creating: its id is not in the store yet
                        await asyncio.sleep(random.uniform(0.02, 0.1))
                        continue
                    if await self.busy() >= self.cap:  # taken while we queued for the turn
                        continue
                    self._creating += 1
                    created = Created()
                    try:
                        yield created
                    finally:
                        self._creating -= 1
                        if created.video_id and self.store is None:
                            self.rendering.setdefault(created.video_id, time.monotonic())
                    return
            finally:
                self._turn.release()
                await self._notify()

    async def _room(self, deadline: float | None, look: Look | None) -> None:
        """Until the count says a render is free: woken by a finish here, looking again every
        LOOK_EVERY seconds for finishes elsewhere (and forgotten renders expiring), and at the
        waiter's own parts when `look` says they are due."""
        while await self.busy() >= self.cap:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise self._full()
            wait = LOOK_EVERY if left is None else min(left, LOOK_EVERY)
            if look is not None:
                own = await look()
                if own is not None:
                    wait = min(wait, own)
                if await self.busy() < self.cap:
                    return
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(wait, 0.0)):
                        await self._changed.wait()

    def counts(self, video_id: str) -> bool:
        """Whether `video_id` may still be counted as rendering (so a look at it could free a render):
        with a store, until a look finds it finished (its looker stops looking then); without one,
        until it is forgotten."""
        return self.store is not None or video_id in self.rendering

    def _full(self) -> TimeoutError:
        return TimeoutError(f"HeyGen was rendering {self.cap} videos for this key until the job's deadline "
                            "(heygen.account_concurrency, heygen.deadline_seconds)")

    def _cluster_turn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        if self.store is None:
            return contextlib.nullcontext(_ALWAYS)
        return self.store.leader(f"{self.renderer}.create")

    async def seen(self, video_id: str, status: str | None) -> None:
        """A status look: a finished video frees its render; without a store, an unfinished one we did
        not know of takes one (with a store, its job's saved id counts it already)."""
        if status in FINISHED:
            if self.store is not None:
                await self.store.remote_finished(self.renderer, video_id)  # for every node's count
            elif self.rendering.pop(video_id, None) is None:
                return
            await self._notify()
        elif status and self.store is None:
            self.rendering.setdefault(video_id, time.monotonic())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


class _Held:
    held = True


_ALWAYS = _Held()


class Created:
    """What a create call reports back to its slot: the video id HeyGen gave it."""

    video_id: str | None = None
