"""A conformance run: judges each example, counts evidence, keeps time, stops cleanly.

The pytest plugin owns one `Judge` per process; every conformance property calls it once per
example.  It knows nothing of pytest, so the same judging drives any front end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import note

from mailconform.specs.explain import InvariantViolation
from mailconform.specs.invariants import BY_ID
from mailconform.specs.scenario import Scenario
from mailconform.suts.base import Player, SutError
from mailconform.suts.wire import MailboxError, ProtocolError

SUT_FAILURES = (SutError, OSError, ProtocolError, MailboxError)
"""What a SUT that cannot be driven raises: refused set-up, a dead or hung server, unreadable mail."""


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
        self.broken: str | None = None
        """The invariant during which the SUT could not be driven, once it could not."""

    def __call__(self, scenario: Scenario, invariant_id: str) -> None:
        """Judge one example: play it (once for all invariants) and check ``invariant_id``."""
        tally = self.tallies.setdefault(invariant_id, Tally())
        if self.out_of_time():
            raise OutOfTime
        try:
            run = self.player.run(scenario)
        except SUT_FAILURES as error:
            said = (str(error).strip().splitlines() or [type(error).__name__])[0]
            self.broken = self.broken or invariant_id
            raise SutBroken(f"{self.player.sut.name} could not be driven: {said}") from error
        note(scenario.story())
        invariant = BY_ID[invariant_id]
        violations = invariant.check(run.plan, run.observation)
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
