"""Waiting for a system to go quiet."""

from __future__ import annotations

import itertools
import time

from mailconform.suts.wire import wait_for, wait_quiet


def test_returns_once_the_snapshot_holds_still() -> None:
    """A snapshot that stops changing is returned as settled after the settle time, not the limit."""
    counter = itertools.count()
    values = (min(next(counter), 5) for _ in itertools.count())
    quiet = wait_quiet(lambda: next(values), settle=0.1, limit=5, poll=0.01)
    assert quiet.settled and quiet.snapshot == 5
    assert 0.1 <= quiet.waited < 1


def test_never_waits_beyond_the_limit() -> None:
    """A snapshot that keeps changing ends at the limit with the last value and settled=False."""
    start = time.monotonic()
    quiet = wait_quiet(time.monotonic, settle=0.2, limit=0.3, poll=0.01)
    assert not quiet.settled
    assert 0.3 <= time.monotonic() - start < 0.5
    assert quiet.snapshot >= start + 0.29


def test_wait_for_reports_whether_the_predicate_came_true() -> None:
    """wait_for is True as soon as the predicate holds, False after the limit otherwise."""
    deadline = time.monotonic() + 0.05
    assert wait_for(lambda: time.monotonic() > deadline, limit=1, poll=0.01)
    start = time.monotonic()
    assert not wait_for(lambda: False, limit=0.1, poll=0.01)
    assert 0.1 <= time.monotonic() - start < 0.3
