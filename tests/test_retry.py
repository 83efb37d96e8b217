"""The one retry loop: tries counted, patient refusals waited out until a deadline, a caller's own waits."""

import time

import pytest

from avatar_daemon import GaveUp, TryAgain, retrying


class Flaky:
    """Fails with the given TryAgains in turn, then answers "done"; counts its calls."""

    def __init__(self, *failures: TryAgain):
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


async def test_tries_are_counted_and_the_last_reason_and_cause_are_kept():
    cause = ValueError("HTTP 503")
    last = TryAgain("unavailable")
    last.__cause__ = cause
    attempt = Flaky(TryAgain("first", after=0), TryAgain("second", after=0), last)
    with pytest.raises(GaveUp) as gave_up:
        await retrying(attempt, retries=2, base_delay=0.001)
    assert attempt.calls == 3 and gave_up.value.tries == 3 and gave_up.value.reason == "unavailable"
    assert gave_up.value.last is last and gave_up.value.__cause__ is cause and not gave_up.value.past_deadline


async def test_patient_refusals_do_not_use_up_tries_within_a_deadline():
    attempt = Flaky(*[TryAgain("busy", after=0, patient=True) for _ in range(6)], TryAgain("503", after=0))
    assert await retrying(attempt, retries=1, deadline=time.monotonic() + 60) == "done"
    assert attempt.calls == 8

    without_deadline = Flaky(*[TryAgain("busy", after=0, patient=True) for _ in range(3)])
    with pytest.raises(GaveUp):  # no deadline: a patient refusal is an ordinary one
        await retrying(without_deadline, retries=1)
    assert without_deadline.calls == 2


async def test_a_wait_past_the_deadline_gives_up_at_once():
    attempt = Flaky(*[TryAgain("busy", after=30, patient=True) for _ in range(3)])
    with pytest.raises(GaveUp) as gave_up:
        await retrying(attempt, retries=5, deadline=time.monotonic() + 10)
    assert gave_up.value.past_deadline and attempt.calls == 1


async def test_a_callers_wait_rule_sees_each_failure():
    seen = []

    def wait(tries: int, failure: TryAgain) -> float:
        seen.append((tries, failure.reason, failure.after))
        return 0.0

    attempt = Flaky(TryAgain("a", after=7.0), TryAgain("b"))
    assert await retrying(attempt, retries=3, wait=wait) == "done"
    assert seen == [(1, "a", 7.0), (2, "b", None)]  # 7 s asked for, none slept: the rule decided


async def test_anything_but_try_again_is_not_repeated():
    calls = 0

    async def broken():
        nonlocal calls
        calls += 1
        raise KeyError("not transient")

    with pytest.raises(KeyError):
        await retrying(broken, retries=5)
    assert calls == 1
