"""What every system under test offers, and the one driver that plays a scenario on it."""

from __future__ import annotations

import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

from hypothesis import note

from mailconform.specs.explain import InvariantViolation
from mailconform.specs.invariants import BY_ID
from mailconform.specs.model import Plan, Role, plan
from mailconform.specs.naming import Naming
from mailconform.specs.observation import Observation
from mailconform.specs.scenario import Scenario
from mailconform.suts.heap import TRIM_EVERY, give_back_freed_memory
from mailconform.suts.wire.replies import Reply, TransactionReply


class SystemUnderTest(Protocol):
    name: str
    transport: str
    roles: frozenset[Role]
    expands_aliases: bool

    def naming(self, nonce: str) -> Naming:
        """How this SUT names the story's symbols (fixed pools, its domain)."""
        ...

    def preflight(self) -> None:
        """Raise with one clear message if the SUT cannot play the simplest scenario."""
        ...

    def play(self, plan: Plan) -> Observation:
        """Inject the plan's transactions, wait until delivery is complete, read every mailbox back."""
        ...

    def recheck(self, plan: Plan) -> Observation:
        """Read the mailboxes of the last `play(plan)` again, once the full quiescence bound since
        that play has passed (or sooner, as soon as every owed copy is there); nothing is sent.

        A copy present now but missing from the play's observation was delivered late, not lost;
        `Observation.waited` says how long after the play's last reply this read was taken.
        """
        ...

    def close(self) -> None: ...


class SutError(RuntimeError):
    """The SUT could not be driven (set-up refused, server gone, mailboxes never settled):
    an error, never a verdict. The message is one line naming the SUT, the step and the
    last reply."""

    def __init__(self, sut: str, step: str, detail: str, last_reply: str | None = None) -> None:
        said = f" (last reply: {last_reply})" if last_reply else ""
        self.what = f"{detail} at {step}{said}"
        """The message without the SUT's name, for lines that name it already."""
        super().__init__(f"{sut}: {self.what}")
        self.sut, self.step, self.detail, self.last_reply = sut, step, detail, last_reply


@dataclass(frozen=True)
class Run:
    plan: Plan
    observation: Observation


def execute(sut: SystemUnderTest, scenario: Scenario) -> Run:
    """Play ``scenario`` against ``sut`` under a fresh nonce."""
    naming = sut.naming(secrets.token_hex(4))
    the_plan = plan(scenario, naming, sut.roles, sut.expands_aliases)
    return Run(the_plan, sut.play(the_plan))


class Player:
    """Plays scenarios on one SUT and remembers the latest plays, so that every invariant judges
    the same play of a scenario instead of playing it again."""

    def __init__(self, sut: SystemUnderTest, capacity: int = 8) -> None:
        self.sut = sut
        self.capacity = capacity
        """Held plays: the latest ones, which every invariant judges in turn (a property meets
        older scenarios again through the judge's verdicts, not through plays)."""
        self._runs: OrderedDict[Scenario, Run] = OrderedDict()
        self.plays = 0
        self.offered = self.refused = 0
        """Envelope recipients offered to the SUT, and refused by it, over all plays."""

    def run(self, scenario: Scenario) -> Run:
        run = self._runs.get(scenario)
        if run is not None:
            self._runs.move_to_end(scenario)
            return run
        run = execute(self.sut, scenario)
        _refused_own_mailbox(self.sut, run)
        self.plays += 1
        if self.plays % TRIM_EVERY == 0:  # a long run's server threads hold freed memory: give it back
            give_back_freed_memory()
        for tx in run.plan.injections:
            self.offered += len(tx.rcpts)
            accepted = run.observation.accepted.get(tx.id, frozenset())
            self.refused += sum(rcpt.lower() not in accepted for rcpt in tx.rcpts)
        self._runs[scenario] = run
        if len(self._runs) > self.capacity:
            self._runs.popitem(last=False)
        return run


_NO_SUCH_MAILBOX = re.compile(r"^(?:\d{3} )*(5\d\d 5\.1\.1\b.*)")
"""The reply codes logged for a recipient, ending in a permanent "no such mailbox" (RFC 3463)."""


def _refused_own_mailbox(sut: SystemUnderTest, run: Run) -> None:
    """A "no such mailbox" for a mailbox of the SUT's own domain is set-up gone wrong, not a
    refusal to judge: the suite addresses only mailboxes it provisioned or was given."""
    domain = "@" + run.plan.naming.sut_domain
    for tx_id, said in run.observation.replies.items():
        for rcpt, codes in said.items():
            refused = _NO_SUCH_MAILBOX.match(codes)
            if refused and rcpt.lower().endswith(domain):
                raise SutError(sut.name, f"RCPT TO:<{rcpt}> ({tx_id})",
                               "answered 'no such mailbox' for a mailbox the suite set up (provisioning"
                               " did not take effect, or the mailbox template is wrong)", refused[1])


def delivered_late(sut: SystemUnderTest, scenario: Scenario) -> float | None:
    """Replay a story whose copies looked lost and read again after the full quiescence bound.

    Returns how many seconds after the SUT's last reply every owed copy was found (a late
    delivery, not a loss), or None when a copy is still missing: then the loss is real.
    """
    copy_per_path = BY_ID["copy-per-path"].check
    run = execute(sut, scenario)
    if not copy_per_path(run.plan, run.observation):
        return run.observation.waited
    observation = sut.recheck(run.plan)
    return None if copy_per_path(run.plan, observation) else observation.waited


@dataclass
class ReplyLog:
    """The SUT's answers per injection: what it accepted, and what it said."""

    accepted: dict[str, frozenset[str]] = field(default_factory=dict)
    said: dict[str, dict[str, str]] = field(default_factory=dict)
    transcripts: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def record(self, transaction_id: str, reply: TransactionReply) -> None:
        self.transcripts[transaction_id] = tuple(reply.dialogue())
        self.accepted[transaction_id] = frozenset(
            r.lower() for r in reply.rcpts if reply.delivered_to(r))
        self.said[transaction_id] = {rcpt: said(reply.mail, rcpt_reply, reply.data.get(rcpt))
                                     for rcpt, rcpt_reply in reply.rcpts.items()}


def said(*replies: Reply | None) -> str:
    """The codes of MAIL, RCPT and the final dot, and the server's words in its last reply."""
    sent = [r for r in replies if r]
    codes = " ".join(str(r.code) for r in sent)
    return f"{codes} {' '.join(sent[-1].text.split())}"


def assert_invariant(sut: SystemUnderTest, scenario: Scenario, invariant_id: str) -> Run:
    """Play ``scenario`` and raise `InvariantViolation` if the invariant does not hold."""
    invariant = BY_ID[invariant_id]
    run = execute(sut, scenario)
    note(scenario.story())
    violations = invariant.check(run.plan, run.observation)
    if violations:
        raise InvariantViolation(invariant, run.plan, run.observation, violations, sut.name)
    return run
