"""Wait until a system under test has stopped moving mail."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Quiet(Generic[T]):
    """The last snapshot taken, and whether it held still for the settle time."""

    snapshot: T
    settled: bool
    waited: float


def wait_quiet(snapshot: Callable[[], T], *, settle: float, limit: float, poll: float = 0.02) -> Quiet[T]:
    """Poll `snapshot` until it is unchanged for `settle` s, but never beyond `limit` s.

    Hitting the limit is not an error here: the caller decides what an unsettled
    system means (`settled` is False then).
    """
    start = time.monotonic()
    last = snapshot()
    last_change = start
    while True:
        now = time.monotonic()
        if now - last_change >= settle:
            return Quiet(last, True, now - start)
        if now - start >= limit:
            return Quiet(last, False, now - start)
        time.sleep(max(0.0, min(poll, start + limit - now, last_change + settle - now)))
        current = snapshot()
        if current != last:
            last, last_change = current, time.monotonic()


def wait_for(predicate: Callable[[], bool], *, limit: float, poll: float = 0.02) -> bool:
    """Poll `predicate` until it holds (True) or `limit` s have passed (False)."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True
