"""The event bus: every job state change is persisted, then fanned out to notifiers and watchers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any, AsyncIterator

from .hookspecs import Notifier, TakesNotices
from .models import JobEvent, Notice

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)


CHANNEL = "job_events"
MAX_SHARED_MESSAGE = 1000  # characters (4 bytes at most each): a NOTIFY payload stays under 8000 bytes
MAX_SHARED_DATA = 2000     # bytes of JSON; bigger data (a result) stays in the store


class EventBus:
    """Watchers hear every node's events; notifiers hear only this node's, so each is told once."""

    def __init__(self, store: "Store", notifiers: list["Notifier"], node_id: str = "local"):
        self.store = store
        self.notifiers = notifiers
        self.node_id = node_id
        self._watchers: dict[asyncio.Queue[JobEvent], int | None] = {}
        self._pending: set[asyncio.Task] = set()
        self._outbox: asyncio.Queue[JobEvent] | None = None

    async def publish(self, event: JobEvent, result: dict[str, Any] | None = None,
                      fence: tuple[str, int] | None = None) -> bool:
        """Persist first, so nobody hears of a state the store does not hold.

        `fence` (node id, attempt) is a runner's claim on the job: False, and nobody told, when
        the job is no longer that claim's (its lease ran out and another node took it) or has ended.
        """
        event = self._stamped(event)
        if fence is None:
            await self.store.record_event(event, result)
        elif not await self.store.record_event(event, result, fence=fence):
            return False
        self.announce(event)
        return True

    def announce(self, event: JobEvent) -> None:
        """Tell watchers and notifiers about an event that is already persisted, and the other nodes."""
        event = self._stamped(event)
        self._to_watchers(event)
        if self._outbox is not None:
            self._outbox.put_nowait(event)
        for notifier in self.notifiers:
            task = asyncio.create_task(self._notify(notifier, event), name=f"notify-{notifier.name}")
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def _stamped(self, event: JobEvent) -> JobEvent:
        return event if event.node_id else event.model_copy(update={"node_id": self.node_id})

    def _to_watchers(self, event: JobEvent) -> None:
        for queue, job_id in list(self._watchers.items()):
            if job_id is None or job_id == event.job_id:
                queue.put_nowait(event)

    async def share(self) -> None:
        """Until cancelled: send this node's events to the others, in the order they happened.

        One sender, so a job's progress arrives in order; a failed send is logged and skipped
        (the store holds the event; another node's watcher sees the next one).
        """
        self._outbox = asyncio.Queue()
        try:
            while True:
                event = await self._outbox.get()
                try:
                    await self.store.notify(CHANNEL, shared_payload(event))
                except Exception as exc:
                    log.warning("could not tell other nodes of job %s (%s): %s", event.job_id, event.state.value,
                                exc)
        finally:
            self._outbox = None

    def receive(self, payload: str) -> JobEvent | None:
        """Another node's event: to this node's watchers (a WebSocket, a Slack progress message), not its notifiers."""
        try:
            event = JobEvent.model_validate_json(payload)
        except ValueError as exc:
            log.warning("ignoring a job event from another node that does not parse: %s", exc)
            return None
        if event.node_id == self.node_id:
            return None  # our own, heard back
        self._to_watchers(event)
        return event

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


def shared_payload(event: JobEvent) -> str:
    """The event as other nodes hear it: small enough for a NOTIFY; a big `data` (a result) is left out."""
    data = json.dumps(event.data, default=str)
    small = event.model_copy(update={"message": event.message[:MAX_SHARED_MESSAGE],
                                     "data": event.data if len(data) <= MAX_SHARED_DATA else {}})
    return small.model_dump_json()
