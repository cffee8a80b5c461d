"""Turn a violated invariant into a short story a mail engineer can read."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict
from typing import Any

from mailconform.specs.invariants import Invariant, Violation
from mailconform.specs.model import Plan
from mailconform.specs.observation import Observation
from mailconform.specs.scenario import Resend, Scenario, SendAgain


class InvariantViolation(AssertionError):
    """An invariant failed on one scenario; carries the report's counterexample."""

    def __init__(self, invariant: Invariant, plan: Plan, observation: Observation,
                 violations: list[Violation], sut: str) -> None:
        self.invariant = invariant
        self.text = explain(invariant, plan, observation, violations, sut)
        self.counterexample: dict[str, Any] = {
            "text": self.text,
            "messages": len(plan.scenario.messages),
            "transactions": len(plan.injections),
            "scenario": scenario_json(plan.scenario),
        }
        super().__init__(self.text)


def explain(invariant: Invariant, plan: Plan, observation: Observation,
            violations: list[Violation], sut: str) -> str:
    symbolic = _symbolizer(plan)
    lines = [f"{invariant.id} ({invariant.strength}) violated by {sut}",
             f"  {invariant.summary}",
             f"  Grounded in: {', '.join(invariant.rfc)}", "", "The story:"]
    lines += [f"  {line}" for line in plan.scenario.story().splitlines()]
    lines += ["", "Transactions the suite sent into the SUT (replies: MAIL RCPT DATA;"
                  " missing numbers are hops between the suite's own hosts):"]
    for tx in plan.injections:
        said = observation.replies.get(tx.id, {})
        rcpts = ", ".join(f"{r} [{said.get(r, 'not sent')}]" for r in tx.rcpts)
        lines.append(symbolic(f"  {tx.id}  {tx.hop} -> SUT {tx.entry}:"
                              f" MAIL FROM:<{tx.mail_from}> RCPT TO: {rcpts}"))
    lines.append("")
    for mailbox in sorted({v.mailbox for v in violations}):
        expected = sorted((e.path for e in plan.expected if e.mailbox == mailbox), key=_number)
        seen = Counter(str(c.path) + ("" if c.folder == "INBOX" else f" in folder {c.folder}")
                       for c in observation.copies_in(mailbox))
        notices = [n for n in observation.notices if n.mailbox == mailbox]
        lines.append(symbolic(
            f"Mailbox {mailbox}: expected {_copies(len(expected))} (paths {', '.join(expected) or '-'}),"
            f" observed {_copies(sum(seen.values()))} (paths {', '.join(seen.elements()) or '-'});"
            f" failure notices received there: {len(notices)}"))
        lines += [symbolic(f"  x {v.detail}") for v in violations if v.mailbox == mailbox]
    return "\n".join(lines)


def _copies(count: int) -> str:
    return f"{count} copy" if count == 1 else f"{count} copies"


def _number(transaction_id: str) -> int:
    return int(transaction_id.rpartition("t")[2])


def _symbolizer(plan: Plan) -> Any:
    """Replace the example's concrete names by the story's symbols."""
    naming = plan.naming
    local = re.compile(rf"[\w.+-]+@{re.escape(naming.sut_domain)}", re.IGNORECASE)
    ids = re.compile(rf"mc{re.escape(naming.nonce)}t(\d+)")
    message_ids = re.compile(rf"<(\w+)\.{re.escape(naming.nonce)}@[\w.]+>")

    def symbolic(text: str) -> str:
        text = ids.sub(r"t\1", text)
        text = message_ids.sub(r"<\1>", text)
        return local.sub(lambda m: naming.symbol_of(m.group(0)), text)
    return symbolic


def scenario_json(scenario: Scenario) -> dict[str, Any]:
    """The scenario as plain JSON data, each event tagged with its kind."""
    def kind(event: object) -> str:
        return "resend" if isinstance(event, Resend) else (
            "send-again" if isinstance(event, SendAgain) else "submit")
    return {"world": asdict(scenario.world),
            "events": [{"kind": kind(e), **asdict(e)} for e in scenario.events]}
