"""The event bus: every job state change is persisted, then fanned out to notifiers and watchers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, AsyncIterator

from .hookspecs import Notifier, TakesNotices
from .models import JobEvent, Notice

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)


class EventBus:
    def __init__(self, store: "Store", notifiers: list["Notifier"]):
        self.store = store
        self.notifiers = notifiers
        self._watchers: dict[asyncio.Queue[JobEvent], int | None] = {}
        self._pending: set[asyncio.Task] = set()

    async def publish(self, event: JobEvent, result: dict[str, Any] | None = None) -> None:
        """Persist first, so nobody hears of a state the store does not hold."""
        await self.store.record_event(event, result)
        self.announce(event)

    def announce(self, event: JobEvent) -> None:
        """Tell watchers and notifiers about an event that is already persisted."""
        for queue, job_id in list(self._watchers.items()):
            if job_id is None or job_id == event.job_id:
                queue.put_nowait(event)
        for notifier in self.notifiers:
            task = asyncio.create_task(self._notify(notifier, event), name=f"notify-{notifier.name}")
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def notice(self, notice: Notice) -> None:
        """Tell the notifiers that take notices (TakesNotices) about a non-job event."""
        for notifier in self.notifiers:
            if isinstance(notifier, TakesNotices):
                task = asyncio.create_task(self._notify(notifier, notice), name=f"notice-{notifier.name}")
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)

    async def _notify(self, notifier: "Notifier", event: JobEvent | Notice) -> None:
        try:
            if isinstance(event, Notice):
                await notifier.notice(event)
            else:
                await notifier.notify(event)
        except Exception as exc:  # a notifier never stops a job
            what = event.kind if isinstance(event, Notice) else f"job {event.job_id} ({event.state.value})"
            log.warning("notifier %r failed on %s: %s", notifier.name, what, exc)

    @contextlib.asynccontextmanager
    async def watch(self, job_id: int | None = None) -> AsyncIterator[asyncio.Queue[JobEvent]]:
        """Receive every event (or one job's) published while inside the block."""
        queue: asyncio.Queue[JobEvent] = asyncio.Queue()
        self._watchers[queue] = job_id
        try:
            yield queue
        finally:
            self._watchers.pop(queue, None)

    async def drain(self, timeout: float = 5.0) -> None:
        """Give in-flight notifications a moment to finish at shutdown."""
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=timeout)
