"""A conformance run: judges each example, counts evidence, keeps time, stops cleanly.

The pytest plugin owns one `Judge` per process; every conformance property calls it once per
example.  It knows nothing of pytest, so the same judging drives any front end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from hypothesis import note

from mailconform.specs.explain import InvariantViolation
from mailconform.specs.invariants import BY_ID
from mailconform.specs.scenario import Scenario
from mailconform.suts.base import Player, SutError, delivered_late
from mailconform.suts.wire import MailboxError, ProtocolError

_T = TypeVar("_T")
SUT_FAILURES = (SutError, OSError, ProtocolError, MailboxError)
"""What a SUT that cannot be driven raises: refused set-up, a dead or hung server, unreadable mail."""


def first_line(error: BaseException) -> str:
    """An error's message as one line: the SUT, the step, the last reply (transcripts stay out)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class SutBroken(BaseException):
    """The SUT could not be driven.  A BaseException, so Hypothesis neither retries nor shrinks
    it (it is no property of the scenario) and no expected failure can absorb it."""


class OutOfTime(BaseException):
    """The run's time budget is spent: end this invariant with what it has judged."""


@dataclass
class Tally:
    """One invariant's evidence so far."""

    examples: int = 0
    exercised: int = 0
    first_violation: InvariantViolation | None = None
    """Counting stops here: what follows is Hypothesis shrinking it."""
    last_failing: Scenario | None = None
    """The latest scenario that broke it: after shrinking, the minimal one (replayed last)."""
    late: list[float] = field(default_factory=list)
    """copy-per-path: per example whose missing copies turned up on recheck, when they were there."""
    lost: Scenario | None = None
    """copy-per-path: the first story whose missing copy was still missing after the full
    quiescence bound."""
    started: float = field(default_factory=time.monotonic)
    reported: float = field(default_factory=time.monotonic)


class Judge:
    def __init__(self, player: Player, deadline: float | None = None,
                 progress: Callable[[str], None] | None = None, every: float = 10.0) -> None:
        self.player = player
        self.deadline = deadline
        """Wall-clock time (time.time()) at which the run's budget is spent, if it has one."""
        self.progress = progress
        self.every = every
        self.tallies: dict[str, Tally] = {}

    def __call__(self, scenario: Scenario, invariant_id: str) -> None:
        """Judge one example: play it (once for all invariants) and check ``invariant_id``."""
        tally = self.tallies.setdefault(invariant_id, Tally())
        if self.out_of_time():
            raise OutOfTime
        run = self._driven(lambda: self.player.run(scenario))
        note(scenario.story())
        invariant = BY_ID[invariant_id]
        violations = invariant.check(run.plan, run.observation)
        if violations and invariant_id == "copy-per-path" and tally.lost is None:
            # Until one loss is confirmed, every missing copy is read again after the full
            # quiescence bound: a copy that turns up was delivered late, which is no violation.
            waited = self.late_by(scenario)
            if waited is not None:
                tally.late.append(waited)
                violations = []
            if waited is None:
                tally.lost = scenario
        if tally.first_violation is None:
            tally.examples += 1
            tally.exercised += invariant.exercised(run.plan, run.observation)
            self._report_progress(invariant_id, tally)
        if violations:
            violation = InvariantViolation(invariant, run.plan, run.observation, violations,
                                           self.player.sut.name)
            tally.first_violation = tally.first_violation or violation
            tally.last_failing = scenario
            raise violation

    def late_by(self, scenario: Scenario) -> float | None:
        """Seconds after the last reply at which a replay of ``scenario`` had every owed copy,
        reading again after the full quiescence bound; None if a copy is still missing."""
        return self._driven(lambda: delivered_late(self.player.sut, scenario))

    def _driven(self, step: Callable[[], _T]) -> _T:
        try:
            return step()
        except SUT_FAILURES as error:
            raise SutBroken(f"{self.player.sut.name} could not be driven: {first_line(error)}") from error

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline

    def _report_progress(self, invariant_id: str, tally: Tally) -> None:
        now = time.monotonic()
        if self.progress is None or now - tally.reported < self.every:
            return
        tally.reported = now
        self.progress(f"mailconform: {invariant_id}: {tally.examples} examples"
                      f" ({tally.exercised} exercised), {now - tally.started:.0f} s;"
                      f" {self.player.plays} plays so far")
