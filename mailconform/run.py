"""A conformance run: judges each example, counts evidence, keeps time, stops cleanly.

The pytest plugin owns one `Judge` per process.  Its `search` draws each scenario once, plays
it once and judges it for every selected invariant; a conformance property then runs only
for an invariant the search broke (to shrink the failure) or one with saved counterexamples.
The properties draw with the search's seed, so until their first failure they meet the very
scenarios, plays and verdicts the search made.  It knows nothing of pytest, so the same
judging drives any front end.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import Phase, example, given, note, seed, settings

from mailconform.specs.explain import InvariantViolation, scenario_from_json
from mailconform.specs.invariants import BY_ID, Violation
from mailconform.specs.scenario import Scenario
from mailconform.specs.wording import counted
from mailconform.strategies import SEED_STORY, scenarios
from mailconform.suts.base import Player, Run, SutError, delivered_late
from mailconform.suts.wire import MailboxError, ProtocolError
from mailconform.verdicts import Verdicts

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
    counting: bool = True
    """Examples are counted once: by the search, not again by a property that replays them."""
    shrink_plays: int = 0
    reported: float = field(default_factory=time.monotonic)
    broken_elsewhere: dict[str, Any] | None = None
    """The first counterexample, found by another process's share of the search: this process's
    property shrinks it, and reports it unshrunk if it cannot reach it."""


@dataclass(frozen=True)
class Share:
    """One process's part of a search split across ``of`` processes: every process draws every
    scenario (the same seed draws the same ones), and plays and judges those whose index modulo
    ``of`` is ``index``."""

    index: int
    of: int

    def holds(self, example: int) -> bool:
        return example % self.of == self.index


@dataclass
class Evidence:
    """One invariant's evidence from one share of a search, by example index, so that the shares
    merge into what one process judging every example would have counted."""

    judged: list[int] = field(default_factory=list)
    exercised: list[int] = field(default_factory=list)
    late: list[tuple[int, float]] = field(default_factory=list)
    broken_at: int | None = None
    counterexample: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Evidence:
        return cls(list(data["judged"]), list(data["exercised"]),
                   [(int(i), float(s)) for i, s in data["late"]], data["broken_at"], data["counterexample"])


def merged(shares: Sequence[Evidence]) -> Evidence:
    """One invariant's evidence over every share: counted up to the first example any share
    broke it with, where one process judging every example would have stopped counting."""
    broken = sorted((s.broken_at, n, s) for n, s in enumerate(shares) if s.broken_at is not None)
    end, _, first = broken[0] if broken else (None, 0, Evidence())

    def counted(index: int) -> bool:
        return end is None or index <= end
    return Evidence(sorted(i for s in shares for i in s.judged if counted(i)),
                    sorted(i for s in shares for i in s.exercised if counted(i)),
                    sorted((i, w) for s in shares for i, w in s.late if counted(i)),
                    end, first.counterexample)


@dataclass
class _BrokenPlay:
    """A play that broke an invariant, with what it broke: a violation is told from its own play."""

    run: Run
    violations: dict[str, list[Violation]] = field(default_factory=dict)


class Judge:
    """Judges scenarios on the player's plays, and remembers each verdict (a few bytes per
    scenario, so a long run keeps them all) for the properties that meet the scenario again;
    the plays themselves are kept only while recent, or while they broke an invariant."""

    def __init__(self, player: Player, deadline: float | None = None,
                 progress: Callable[[str], None] | None = None, every: float = 10.0) -> None:
        self.player = player
        self.deadline = deadline
        """Wall-clock time (time.time()) at which the run's budget is spent, if it has one."""
        self.progress = progress
        self.every = every
        self.tallies: dict[str, Tally] = {}
        self.searched: set[str] = set()
        self.evidence: dict[str, Evidence] = {}
        """Invariant id -> its evidence by example index, kept by a search given a share."""
        self.search_cut = False
        """The budget ran out during the search: its invariants were judged on fewer examples."""
        self.judgments = 0
        """Examples judged, on plays made for them or before."""
        self.verdicts = Verdicts()
        """Every scenario judged -> the invariants it passed."""
        self._broken: OrderedDict[Scenario, _BrokenPlay] = OrderedDict()
        """The latest plays that broke an invariant, by scenario."""

    def search(self, invariant_ids: Sequence[str], profile: settings, run_seed: Hashable,
               share: Share | None = None) -> None:
        """Judge every invariant of ``invariant_ids`` not searched yet on one draw of each scenario.

        Draws as the properties do (``profile``, ``run_seed``, the seed story first) but never
        fails: a broken invariant is left to its own property, which meets the same scenarios
        and shrinks.  Ends early once every one of them is broken.  With a ``share``, plays and
        judges only its examples, keeping their `evidence` by index for `adopt` to merge."""
        wanted = [i for i in dict.fromkeys(invariant_ids) if i not in self.searched]
        if not wanted:
            return
        self.searched.update(wanted)
        tallies = [(i, self.tallies.setdefault(i, Tally())) for i in wanted]
        evidence = {i: self.evidence.setdefault(i, Evidence()) for i in wanted} if share else {}
        indices = itertools.count()
        started = reported = time.monotonic()

        @seed(run_seed)
        @settings(profile, database=None, phases=(Phase.explicit, Phase.generate))
        @example(scenario=SEED_STORY)
        @given(scenario=scenarios())
        def every_invariant(scenario: Scenario) -> None:
            nonlocal reported
            unbroken = [i for i, tally in tallies if tally.first_violation is None]
            if not unbroken:
                raise _AllBroken
            if self.out_of_time():  # between scenarios: every invariant keeps the same evidence
                raise OutOfTime
            index = next(indices)
            if share is not None and not share.holds(index):
                return  # drawn all the same: the draws after it depend on it, never on the plays
            for invariant_id in unbroken:
                if share is None:
                    self.judged(scenario, invariant_id)
                else:
                    self._judged_by_index(scenario, invariant_id, index, evidence[invariant_id])
            if self.progress and time.monotonic() - reported >= self.every:
                reported = time.monotonic()
                self.progress(self._progress_line(tallies, reported - started))
        try:
            every_invariant()
        except _AllBroken:
            pass
        except OutOfTime:
            self.search_cut = True
        for _, tally in tallies:
            tally.counting = False

    def _judged_by_index(self, scenario: Scenario, invariant_id: str, index: int, found: Evidence) -> None:
        tally = self.tallies[invariant_id]
        exercised, late = tally.exercised, len(tally.late)
        violation = self.judged(scenario, invariant_id)
        found.judged.append(index)
        if tally.exercised > exercised:
            found.exercised.append(index)
        found.late += [(index, waited) for waited in tally.late[late:]]
        if violation is not None:
            found.broken_at, found.counterexample = index, violation.counterexample

    def adopt(self, shares: Sequence[Mapping[str, Evidence]]) -> None:
        """Take every share's evidence of the searched invariants as this process's own: each
        tally then counts what one search of every example would have counted.  A failure this
        share met later than another share's first is forgotten: the property meets the first."""
        for invariant_id in self.searched:
            mine = self.evidence.get(invariant_id, Evidence())
            every = merged([share.get(invariant_id, Evidence()) for share in shares])
            tally = self.tallies[invariant_id]
            tally.examples, tally.exercised = len(every.judged), len(every.exercised)
            tally.late = [waited for _, waited in every.late]
            if every.broken_at is not None and mine.broken_at != every.broken_at and every.counterexample:
                tally.first_violation = tally.last_failing = None
                tally.broken_elsewhere = every.counterexample
                # A share's first loss was read again after the full quiescence bound: confirmed.
                tally.lost = (scenario_from_json(every.counterexample["scenario"])
                              if invariant_id == "copy-per-path" else None)

    def __call__(self, scenario: Scenario, invariant_id: str) -> None:
        """Judge one example of a property: raise its violation, if ``scenario`` breaks it."""
        if self.out_of_time():
            raise OutOfTime
        plays, tally = self.player.plays, self.tallies.setdefault(invariant_id, Tally())
        shrinking = tally.first_violation is not None
        note(scenario.story())  # what a failing property prints; the search never fails, so never notes
        violation = self.judged(scenario, invariant_id)
        if shrinking and self.player.plays > plays:
            self._shrink_progress(invariant_id, tally)
        if violation is not None:
            raise violation

    def _shrink_progress(self, invariant_id: str, tally: Tally) -> None:
        """Shrinking a failure plays new scenarios; on a slow SUT that takes a while: say so."""
        tally.shrink_plays += 1
        now = time.monotonic()
        if self.progress and now - tally.reported >= self.every:
            tally.reported = now
            self.progress(f"mailconform: {invariant_id}: shrinking the failure,"
                          f" {counted(tally.shrink_plays, 'smaller story', 'smaller stories')} played so far")

    def judged(self, scenario: Scenario, invariant_id: str) -> InvariantViolation | None:
        """Judge ``invariant_id`` on ``scenario``, played once for all invariants; a verdict
        given before stands (a late copy stays late), and an example is counted once."""
        tally = self.tallies.setdefault(invariant_id, Tally())
        self.judgments += 1
        passed = self.verdicts[scenario]
        counting = tally.counting and tally.first_violation is None
        if invariant_id in passed and not counting:
            return None
        kept = self._broken.get(scenario)
        run = kept.run if kept else self._driven(lambda: self.player.run(scenario))
        violations = kept.violations.get(invariant_id) if kept else None
        if violations is None and invariant_id in passed:
            violations = []
        if violations is None:  # never judged, or broken on a play no longer kept: judge this one
            violations = self._violations(scenario, invariant_id, run, tally)
            self.verdicts[scenario] = passed - {invariant_id} if violations else passed | {invariant_id}
        invariant = BY_ID[invariant_id]
        if counting:
            tally.examples += 1
            tally.exercised += invariant.exercised(run.plan, run.observation)
        if not violations:
            return None
        self._keep_broken(scenario, run).violations[invariant_id] = violations
        violation = InvariantViolation(invariant, run.plan, run.observation, violations,
                                       self.player.sut.name)
        tally.first_violation = tally.first_violation or violation
        tally.last_failing = scenario
        return violation

    def _keep_broken(self, scenario: Scenario, run: Run) -> _BrokenPlay:
        kept = self._broken.setdefault(scenario, _BrokenPlay(run))
        self._broken.move_to_end(scenario)
        if len(self._broken) > _BROKEN_PLAYS:
            self._broken.popitem(last=False)
        return kept

    def _violations(self, scenario: Scenario, invariant_id: str, run: Run, tally: Tally
                    ) -> list[Violation]:
        violations = BY_ID[invariant_id].check(run.plan, run.observation)
        if violations and invariant_id == "copy-per-path" and tally.lost is None:
            # Until one loss is confirmed, every missing copy is read again after the full
            # quiescence bound: a copy that turns up was delivered late, which is no violation.
            waited = self.late_by(scenario)
            if waited is not None:
                tally.late.append(waited)
                violations = []
            if waited is None:
                tally.lost = scenario
        return violations

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

    def _progress_line(self, tallies: list[tuple[str, Tally]], seconds: float) -> str:
        examples = max(tally.examples for _, tally in tallies)
        broken = [i for i, tally in tallies if tally.first_violation is not None]
        return (f"mailconform: {counted(examples, 'scenario')} judged"
                f" for {counted(len(tallies), 'invariant')}"
                f" in {seconds:.0f} s ({counted(self.player.plays, 'play')})"
                + (f"; broken so far: {', '.join(broken)}" if broken else ""))


_BROKEN_PLAYS = 64
"""Plays kept because they broke an invariant: a shrink's latest candidates, the searches' first."""


class _AllBroken(BaseException):
    """Every searched invariant is broken: more scenarios would judge nothing."""
