"""The conformance report: one outcome per invariant, its evidence count and shrunk counterexample."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mailconform.specs.invariants import BY_ID, CATALOGUE
from mailconform.specs.wording import counted

Outcome = Literal["passed", "failed", "late", "error", "not-exercised"]
"""passed/failed: judged on evidence; late: a copy that looked lost arrived after the full
quiescence bound; error: the SUT could not be driven; not-exercised: nothing to judge."""
OUTCOMES: tuple[Outcome, ...] = ("passed", "failed", "late", "error", "not-exercised")
MARKS: dict[Outcome, str] = {"passed": "pass", "failed": "FAIL", "late": "LATE", "error": "ERROR",
                             "not-exercised": "not exercised"}
NOT_JUDGED_YET = "not judged: the run ended before it"


@dataclass(frozen=True)
class Result:
    """What happened to one invariant in one run."""

    outcome: Outcome
    examples: int = 0
    """Examples judged: all of them for a pass, up to the first counterexample for a failure."""
    exercised: int = 0
    """Of those, how many gave the invariant something to check (its `evidence`)."""
    reason: str = ""
    """One line: why it was not exercised, the error, the late delay, or where a budget stopped it."""
    counterexample: dict[str, Any] | None = None


@dataclass
class Report:
    sut: str
    transport: str = ""
    results: dict[str, Result] = field(default_factory=dict)
    expected: dict[str, dict[str, str]] = field(default_factory=dict)
    """Invariant id -> the expectation the run was judged against (outcome, category, reason)."""
    seed: int | str | None = None
    """The Hypothesis seed every invariant drew its scenarios with."""
    complete: bool = False
    """False while the run goes on, or when it was killed: absent invariants were never judged."""
    absent: str = NOT_JUDGED_YET
    """Why an invariant with no result has none."""
    offered: int = 0
    refused: int = 0
    """Envelope recipients the suite offered the SUT in its plays, and how many it refused."""
    plays: int = 0
    judged: int = 0
    """Scenarios played, and examples judged on those plays (every invariant judges each play)."""

    @property
    def outcomes(self) -> dict[str, Outcome]:
        return {invariant: self.result(invariant).outcome for invariant in BY_ID}

    def record(self, invariant: str, result: Result) -> None:
        self.results[invariant] = result

    def result(self, invariant: str) -> Result:
        return self.results.get(invariant) or Result("not-exercised", reason=self.absent)

    def to_json(self) -> dict[str, Any]:
        return {
            "sut": self.sut,
            "transport": self.transport,
            "seed": self.seed,
            "complete": self.complete,
            "recipients": {"offered": self.offered, "refused": self.refused},
            "plays": {"played": self.plays, "judged": self.judged},
            "invariants": [{
                "id": inv.id,
                "rfc": list(inv.rfc),
                "strength": inv.strength,
                "binds": inv.binds,
                **asdict(self.result(inv.id)),
                "evidence": inv.evidence,
                "expected": self.expected.get(inv.id),
            } for inv in CATALOGUE],
        }

    def table(self, expected: dict[str, str] | None = None) -> list[str]:
        """A plain-text conformance table for the terminal; marks outcomes that differ from
        the expectations, if any are given."""
        width = max(len(inv.id) for inv in CATALOGUE)
        mark_width = max(map(len, MARKS.values()))
        lines = [f"mailconform: {self.sut}" + (f" ({self.transport})" if self.transport else "")]
        for inv in CATALOGUE:
            result = self.result(inv.id)
            note = ""
            if expected is not None and result.outcome in ("passed", "failed"):
                wanted = expected.get(inv.id, "passed")
                note = "  (as expected)" if wanted == result.outcome else f"  (CHANGED: expected {wanted})"
            lines.append(f"  {MARKS[result.outcome]:<{mark_width}} {inv.id:<{width}}  {inv.strength:<8}"
                         f" {result.exercised:>4}/{result.examples:<4} {', '.join(inv.rfc)}{note}")
            if result.reason:
                lines.append(f"  {'':<{mark_width}}   {result.reason}")
        lines.append(f"  ({'exercised/examples'}: examples that gave each invariant something to check)")
        return lines

    def thin_evidence(self, min_share: float) -> list[str]:
        """One line per passed invariant that refusals left judged on fewer than ``min_share`` of
        its examples."""
        if not self.refused:
            return []  # the scenarios' own mix, not the SUT, decides how often each is exercised
        return [f"mailconform: {inv.id} was exercised in only {r.exercised}"
                f" of {counted(r.examples, 'example')}"
                f" ({r.exercised / r.examples:.0%} < {min_share:.0%}; evidence: {inv.evidence});"
                f" the SUT refused {self.refused} of the {counted(self.offered, 'recipient')} offered"
                for inv in CATALOGUE for r in [self.result(inv.id)]
                if r.outcome == "passed" and r.examples and r.exercised < min_share * r.examples]
