"""What every system under test offers, and the one driver that plays a scenario on it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Protocol

from hypothesis import note

from mailconform.specs.explain import InvariantViolation
from mailconform.specs.invariants import BY_ID
from mailconform.specs.model import Plan, Role, plan
from mailconform.specs.naming import Naming
from mailconform.specs.observation import Observation
from mailconform.specs.scenario import Scenario
from mailconform.suts.wire.replies import TransactionReply


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
        """Inject the plan's transactions, wait until quiet, read every mailbox back."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Run:
    plan: Plan
    observation: Observation


def execute(sut: SystemUnderTest, scenario: Scenario) -> Run:
    """Play ``scenario`` against ``sut`` under a fresh nonce."""
    naming = sut.naming(secrets.token_hex(4))
    the_plan = plan(scenario, naming, sut.roles, sut.expands_aliases)
    return Run(the_plan, sut.play(the_plan))


@dataclass
class ReplyLog:
    """The SUT's answers per injection: what it accepted, and what it said."""

    accepted: dict[str, frozenset[str]] = field(default_factory=dict)
    said: dict[str, dict[str, str]] = field(default_factory=dict)

    def record(self, transaction_id: str, reply: TransactionReply) -> None:
        self.accepted[transaction_id] = frozenset(
            r.lower() for r in reply.rcpts if reply.delivered_to(r))
        self.said[transaction_id] = {
            rcpt: " ".join(str(r.code) for r in (reply.mail, rcpt_reply, reply.data.get(rcpt)) if r)
            for rcpt, rcpt_reply in reply.rcpts.items()}


def assert_invariant(sut: SystemUnderTest, scenario: Scenario, invariant_id: str) -> Run:
    """Play ``scenario`` and raise `InvariantViolation` if the invariant does not hold."""
    invariant = BY_ID[invariant_id]
    run = execute(sut, scenario)
    note(scenario.story())
    violations = invariant.check(run.plan, run.observation)
    if violations:
        raise InvariantViolation(invariant, run.plan, run.observation, violations, sut.name)
    return run
