"""A folder watcher that says when it is listening, so nobody has to guess with a sleep."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator

import watchfiles


async def watch(folder: Path, listening: asyncio.Event, **options: Any) -> AsyncIterator[set[tuple[Any, str]]]:
    """watchfiles.awatch(folder, **options), with `listening` set once the OS watch is in place.

    awatch makes its watch (RustNotify) in the first step of its first iteration, before it
    waits on a thread: running that step, and no more, is enough to know that a file written
    from then on is seen.
    """
    batches = watchfiles.awatch(folder, **options).__aiter__()
    pending = asyncio.ensure_future(batches.__anext__())
    try:
        await asyncio.sleep(0)  # the watcher's first step runs before we resume
        listening.set()
        while True:
            try:
                changes = await pending
            except StopAsyncIteration:
                return
            pending = asyncio.ensure_future(batches.__anext__())
            yield changes
    finally:
        listening.clear()
        pending.cancel()
