"""Work that one daemon does at a time, of several sharing a database: the scheduler and the clean-up.

Every node tries for the lock; the holder does the duties until it loses the lock (on
PostgreSQL an advisory lock on a connection of its own, gone with that connection when the
node dies, so a waiting node takes over within `retry` seconds). The store's unique keys
(a campaign's slot) are the second guard, for the moment two nodes both believe they lead.
On SQLite the one daemon always leads.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from .store import Store

log = logging.getLogger(__name__)

RETRY_SECONDS = 2.0


class Leader:
    name = "leader"

    def __init__(self, store: Store, lock: str, node_id: str, duties: list[Callable[[], Awaitable[None]]],
                 retry: float = RETRY_SECONDS):
        self.store, self.lock, self.node, self.duties, self.retry = store, lock, node_id, duties, retry
        self.leading = asyncio.Event()

    async def run(self) -> None:
        while True:
            async with self.store.leader(self.lock) as lead:
                if lead.held:
                    await self._lead(lead.lost)
            await asyncio.sleep(self.retry)

    async def _lead(self, lost: asyncio.Event) -> None:
        log.info("node %s runs the scheduler and the clean-up (it holds the %r lock)", self.node, self.lock)
        self.leading.set()
        try:
            async with asyncio.TaskGroup() as tg:
                duties = [tg.create_task(duty(), name=f"{self.lock}-{i}") for i, duty in enumerate(self.duties)]
                await lost.wait()
                log.warning("node %s lost the %r lock: it stops its duties, another node takes them over",
                            self.node, self.lock)
                for task in duties:
                    task.cancel()
        finally:
            self.leading.clear()
