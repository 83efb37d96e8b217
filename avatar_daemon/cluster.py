"""The part of a daemon that cooperates with the others sharing its database.

It keeps this node's leases alive (one statement per heartbeat for all its running jobs),
says the node is alive, gives the jobs of nodes that stopped heartbeating back to the
queue once their leases run out, adopts their inbox folders, and listens: new jobs wake
the runner at once, other nodes' job events reach this node's watchers. Polling stays as
the fallback, since a notification sent while the listener was reconnecting is lost.
On SQLite all of this is one node talking to itself, and cheap.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Callable

from .events import CHANNEL as EVENTS_CHANNEL
from .events import EventBus
from .inbox import Inbox
from .store import Node, Store, while_busy

log = logging.getLogger(__name__)

JOBS_CHANNEL = "jobs"
# A node's inbox folder is adopted only after this many leases without a heartbeat: a slow node
# that loses a job gets it back by the fence, but a file taken from under it costs it a read.
ADOPT_AFTER_LEASES = 3
LISTEN_RETRY_CAP = 30.0


class Cluster:
    name = "cluster"

    def __init__(self, store: Store, bus: EventBus, inbox: Inbox, wake: Callable[[], None], *, node_id: str,
                 host: str, started_at: datetime, renderers: list[str], lease_seconds: float):
        self.store, self.bus, self.inbox, self.wake = store, bus, inbox, wake
        self.node_id, self.host, self.started_at, self.renderers = node_id, host, started_at, renderers
        self.lease = lease_seconds
        # Several heartbeats fit in one lease, so one slow beat (a busy database) loses nothing.
        self.beat_seconds = max(lease_seconds / 6, 0.2)

    async def beat(self) -> int:
        """Say this node is alive and extend the leases of every job it runs; how many it extended."""
        await self.store.heartbeat_node(self.node_id, self.host, self.started_at, self.renderers)
        return await self.store.extend_leases(self.node_id, self.lease)

    async def reap(self) -> list[int]:
        """Jobs whose lease ran out go back to the queue (their remote ids kept); dead nodes' inbox folders are adopted."""
        reaped = await self.store.reap_expired()
        if reaped:
            log.info("requeued %d job(s) whose node stopped renewing its lease: %s", len(reaped), reaped)
            self.wake()
        alive = {n.node_id for n in await self.alive(ADOPT_AFTER_LEASES * self.lease)}
        for node in self.inbox.stale_folders(alive | {self.node_id}):
            if self.inbox.adopt(node):
                log.info("inbox: took over the files node %s had claimed", node)
        return reaped

    async def alive(self, within: float) -> list[Node]:
        """Nodes whose last heartbeat is at most `within` seconds old."""
        cutoff = self.store.clock() - timedelta(seconds=within)
        return [n for n in await self.store.nodes() if datetime.fromisoformat(n.heartbeat_at) >= cutoff]

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._keep_alive(), name="cluster-heartbeat")
            tg.create_task(self._listen(), name="cluster-listen")
            tg.create_task(self.bus.share(), name="cluster-share")

    async def _keep_alive(self) -> None:
        while True:
            try:
                await while_busy(self.beat, "heartbeat")
                await while_busy(self.reap, "reaping expired leases")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: leases run out, which is the point of them
                log.warning("heartbeat failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.beat_seconds)

    async def _listen(self) -> None:
        delay = 1.0
        while True:
            try:
                async with self.store.listen([JOBS_CHANNEL, EVENTS_CHANNEL]) as notes:
                    self.wake()  # whatever was queued while nobody listened
                    async for channel, payload in notes:
                        delay = 1.0
                        if channel == JOBS_CHANNEL:
                            self.wake()
                        elif channel == EVENTS_CHANNEL:
                            self.bus.receive(payload)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("listening for other nodes failed (%s: %s); polling until it works again, retrying "
                            "in %.0f s", type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, LISTEN_RETRY_CAP)
