"""The conformance report: one outcome per invariant, with its shrunk counterexample."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from mailconform.specs.invariants import CATALOGUE

Outcome = Literal["passed", "failed", "skipped", "error"]
_WORST_FIRST: tuple[Outcome, ...] = ("error", "failed", "passed", "skipped")


@dataclass
class Report:
    sut: str
    transport: str = ""
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    counterexamples: dict[str, dict[str, Any]] = field(default_factory=dict)
    expected: dict[str, dict[str, str]] = field(default_factory=dict)
    """Invariant id -> the expectation the run was judged against (outcome, category, reason)."""

    def record(self, invariant: str, outcome: Outcome,
               counterexample: dict[str, Any] | None = None) -> None:
        """Keep the worst outcome seen for an invariant (a test may run in several phases)."""
        previous = self.outcomes.get(invariant, "skipped")
        if _WORST_FIRST.index(outcome) <= _WORST_FIRST.index(previous):
            self.outcomes[invariant] = outcome
        if counterexample:
            self.counterexamples[invariant] = counterexample

    def to_json(self) -> dict[str, Any]:
        return {
            "sut": self.sut,
            "transport": self.transport,
            "invariants": [{
                "id": inv.id,
                "rfc": list(inv.rfc),
                "strength": inv.strength,
                "binds": inv.binds,
                "outcome": self.outcomes.get(inv.id, "skipped"),
                "counterexample": self.counterexamples.get(inv.id),
                "expected": self.expected.get(inv.id),
            } for inv in CATALOGUE],
        }

    def table(self, expected: dict[str, str] | None = None) -> list[str]:
        """A plain-text conformance table for the terminal; marks outcomes that differ from
        the expectations, if any are given."""
        width = max(len(inv.id) for inv in CATALOGUE)
        marks = {"passed": "pass", "failed": "FAIL", "error": "ERROR", "skipped": "skip"}
        lines = [f"mailconform: {self.sut} ({self.transport})"]
        for inv in CATALOGUE:
            outcome = self.outcomes.get(inv.id, "skipped")
            note = ""
            if expected is not None and outcome in ("passed", "failed"):
                wanted = expected.get(inv.id, "passed")
                note = "  (as expected)" if wanted == outcome else f"  (CHANGED: expected {wanted})"
            lines.append(f"  {marks[outcome]:<5} {inv.id:<{width}}  {inv.strength:<8}"
                         f" {', '.join(inv.rfc)}{note}")
        return lines
