"""The one retry loop: try again what a server said to try again, after the wait it asked for.

An attempt raises `TryAgain` for what is worth repeating (429, 5xx, a dropped connection) and
anything else for what is not; `retrying` sleeps between tries (the server's Retry-After, else
jittered doubling) and raises `GaveUp` with the last reason when the tries are spent.
"""

from __future__ import annotations

import asyncio
import random
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")


class TryAgain(Exception):
    """This attempt failed in a way another attempt may not; `after` is the server's wait, if it gave one."""

    def __init__(self, reason: str, after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.after = after


class GaveUp(Exception):
    def __init__(self, reason: str, tries: int):
        super().__init__(f"{reason} (after {tries} tries)")
        self.reason = reason
        self.tries = tries


def retry_after(value: str | None, default: float = 5.0) -> float | None:
    """Seconds from a Retry-After header (seconds form); None when there is no header."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return default


def backoff(tries: int, base: float = 1.0, cap: float = 60.0, after: float | None = None) -> float:
    """Seconds to wait after the `tries`-th failure in a row: the server's `after` when it gave one,
    else `base` doubled per try and jittered by half either way; never more than `cap`.

    The one rule for waits in the process (`retrying`) and for work put back in a queue (a
    publication retried later).
    """
    pause = after if after is not None else base * 2 ** max(0, tries - 1) * random.uniform(0.5, 1.5)
    return min(pause, cap)


async def retrying(attempt: Callable[[], Awaitable[T]], *, retries: int, base_delay: float = 1.0,
                   max_delay: float = 60.0) -> T:
    """`attempt()` until it returns, at most `retries` times more after the first."""
    for n in range(retries + 1):
        try:
            return await attempt()
        except TryAgain as exc:
            if n == retries:
                raise GaveUp(exc.reason, retries + 1) from None
            await asyncio.sleep(backoff(n + 1, base_delay, max_delay, exc.after))
    raise AssertionError("unreachable")
