"""The one retry loop: try again what a server said to try again, after the wait it asked for.

An attempt raises `TryAgain` for what is worth repeating (429, 5xx, a dropped connection) and
anything else for what is not; `retrying` sleeps between tries (the server's Retry-After, else
jittered doubling) and raises `GaveUp` with the last reason when the tries are spent.

Some refusals pass with time however many there are (a concurrency or rate limit): a `patient`
TryAgain does not count against the tries while there is a `deadline`, and is waited out until
it; a wait that would end past the deadline gives up at once (`GaveUp.past_deadline`).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")


class TryAgain(Exception):
    """This attempt failed in a way another attempt may not; `after` is the server's wait, if it gave one.

    `patient`: the failure passes with time, so within a deadline it does not use up a try.
    The failure itself, when there is one (a client's own error), is the `__cause__`.
    """

    def __init__(self, reason: str, after: float | None = None, *, patient: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.after = after
        self.patient = patient


class GaveUp(Exception):
    """The tries were spent (or the deadline came); `last` is the final TryAgain, its cause the failure."""

    def __init__(self, reason: str, tries: int, last: TryAgain | None = None, past_deadline: bool = False):
        super().__init__(f"{reason} (after {tries} tries)")
        self.reason = reason
        self.tries = tries
        self.last = last
        self.past_deadline = past_deadline


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
                   max_delay: float = 60.0, deadline: float | None = None,
                   wait: Callable[[int, TryAgain], float] | None = None) -> T:
    """`attempt()` until it returns, at most `retries` times more after the first (patient failures
    not counted until `deadline`, monotonic).

    `wait(tries, failure)` gives the seconds before the next try, for a caller with a rule of its
    own on top of `backoff` (HeyGen's: never sooner than Retry-After, and longer as refusals go on).
    """
    tries = counted = 0
    while True:
        tries += 1
        try:
            return await attempt()
        except TryAgain as exc:
            patient = exc.patient and deadline is not None
            counted += not patient
            if counted > retries:
                raise GaveUp(exc.reason, tries, exc) from exc.__cause__
            delay = wait(tries, exc) if wait else backoff(tries, base_delay, max_delay, exc.after)
            if patient and time.monotonic() + delay >= deadline:
                raise GaveUp(exc.reason, tries, exc, past_deadline=True) from exc.__cause__
            await asyncio.sleep(delay)
