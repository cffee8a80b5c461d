"""Turn a violated invariant into a short story a mail engineer can read."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from mailconform.specs.invariants import Invariant, Violation
from mailconform.specs.model import Plan
from mailconform.specs.observation import Observation
from mailconform.specs.scenario import MailingList, Resend, Scenario, SendAgain, Submit, World
from mailconform.specs.wording import counted


class InvariantViolation(AssertionError):
    """An invariant failed on one scenario; carries what a report or a bundle needs."""

    def __init__(self, invariant: Invariant, plan: Plan, observation: Observation,
                 violations: list[Violation], sut: str) -> None:
        self.invariant = invariant
        self.plan = plan
        self.observation = observation
        self.violations = violations
        self.sut = sut
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
    symbolic = symbolizer(plan)
    lines = [f"{invariant.id} violated by {sut}",
             f"  {invariant.strength}: {invariant.summary}",
             f"  Grounded in: {', '.join(invariant.rfc)}", "", "The story:"]
    lines += [f"  {line}" for line in plan.scenario.story().splitlines()]
    lines += ["", f"Names in this run (nonce {plan.naming.nonce}):"]
    lines += [f"  {line}" for line in names(plan)]
    lines += ["", "Transactions the suite sent into the SUT (replies to MAIL, RCPT and the final dot;"
                  " missing numbers are hops between the suite's own hosts):"]
    for tx in plan.injections:
        said = observation.replies.get(tx.id, {})
        lines.append(symbolic(f"  {tx.id}  {tx.hop} -> SUT {tx.entry}, MAIL FROM:<{tx.mail_from}>"))
        width = max(len(symbolic(r)) for r in tx.rcpts) if tx.rcpts else 0
        lines += [f"        RCPT TO:<{symbolic(r)}>{' ' * (width - len(symbolic(r)))}"
                  f"  {said.get(r, 'not sent')}" for r in tx.rcpts]
    lines.append("")
    for mailbox in sorted({v.mailbox for v in violations}):
        expected = sorted((e.path for e in plan.expected if e.mailbox == mailbox), key=_number)
        seen = Counter(str(c.path) + ("" if c.folder == "INBOX" else f" in folder {c.folder}")
                       for c in observation.copies_in(mailbox))
        notices = [n for n in observation.notices if n.mailbox == mailbox]
        lines.append(symbolic(
            f"Mailbox {mailbox}: expected {counted(len(expected), 'copy', 'copies')}"
            f" (paths {', '.join(expected) or '-'}), observed {counted(sum(seen.values()), 'copy', 'copies')}"
            f" (paths {', '.join(seen.elements()) or '-'});"
            f" failure notices received there: {len(notices)}"))
        lines += [symbolic(f"  x {v.detail}") for v in violations if v.mailbox == mailbox]
    return "\n".join(lines)


def names(plan: Plan) -> list[str]:
    """Each symbol of the story beside the concrete name it had in this run."""
    world, naming = plan.scenario.world, plan.naming
    users = world.local_users + tuple(a for a, _ in world.aliases)
    remote = world.remote_users + tuple(f for f, _ in world.forwards)
    lines = [", ".join(f"{s} = {naming.address(s)}" for s in symbols)
             for symbols in (users, remote) if symbols]
    lines += [f"{lst.name} = {naming.address(lst.name)} (sends from {naming.list_bounces(lst.name)})"
              for lst in world.lists]
    keys = sorted({e.message_id for e in plan.scenario.events if isinstance(e, Submit)})
    if keys:
        lines.append(", ".join(f"{k} = {naming.message_id(k)}" for k in keys))
    lines.append(f"tN = the transaction whose Received field has id {naming.transaction_id(0)[:-1]}N")
    return lines


def _number(transaction_id: str) -> int:
    return int(transaction_id.rpartition("t")[2])


def symbolizer(plan: Plan) -> Callable[[str], str]:
    """Replace the example's concrete names by the story's symbols."""
    naming = plan.naming
    local = re.compile(rf"[\w.+-]+@{re.escape(naming.sut_domain)}", re.IGNORECASE)

    def symbolic(text: str) -> str:
        text = _ANY_TRANSACTION_ID.sub(lambda m: f"t{m[2]}" if m[1] == naming.nonce else m[0], text)
        text = _ANY_MESSAGE_ID.sub(lambda m: f"<{m[1]}>" if m[2] == naming.nonce else m[0], text)
        return local.sub(lambda m: naming.symbol_of(m.group(0)), text)
    return symbolic


# Any example's names, the nonce a group of its own: one pattern each for the whole run (see
# naming._TRANSACTION_ID); only the SUT's domain, of which a run has one, goes into a pattern.
_ANY_TRANSACTION_ID = re.compile(r"mc(\w+)t(\d+)")
_ANY_MESSAGE_ID = re.compile(r"<(\w+)\.(\w+)@[\w.]+>")


def scenario_json(scenario: Scenario) -> dict[str, Any]:
    """The scenario as plain JSON data, each event tagged with its kind."""
    def kind(event: object) -> str:
        return "resend" if isinstance(event, Resend) else (
            "send-again" if isinstance(event, SendAgain) else "submit")
    return {"world": asdict(scenario.world),
            "events": [{"kind": kind(e), **asdict(e)} for e in scenario.events]}


_EVENTS = {"submit": Submit, "resend": Resend, "send-again": SendAgain}


def scenario_from_json(data: dict[str, Any]) -> Scenario:
    """The scenario `scenario_json` wrote (JSON lists become the tuples the dataclasses hold)."""
    world = {k: _tuples(v) for k, v in data["world"].items()}
    world["lists"] = tuple(MailingList(**{k: _tuples(v) for k, v in lst.items()})
                           for lst in data["world"]["lists"])
    events = tuple(_EVENTS[e["kind"]](**{k: _tuples(v) for k, v in e.items() if k != "kind"})
                   for e in data["events"])
    return Scenario(World(**world), events)


def _tuples(value: Any) -> Any:
    return tuple(map(_tuples, value)) if isinstance(value, list) else value
