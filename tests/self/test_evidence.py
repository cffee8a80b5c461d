"""Evidence counts: what makes an example count as exercising each invariant."""

import pytest
from hypothesis import given, settings

from mailconform.specs.invariants import BY_ID, CATALOGUE
from mailconform.specs.model import Plan, Role, plan
from mailconform.specs.naming import Naming
from mailconform.specs.observation import Observation
from mailconform.specs.scenario import BccMode, Scenario, Submit, World
from mailconform.strategies import scenarios
from mailconform.suts.base import execute
from mailconform.suts.inprocess import InProcessSUT
from mailconform.suts.policies import KNOWN_BAD


def everything_accepted(scenario: Scenario, roles: tuple[Role, ...]) -> tuple[Plan, Observation]:
    the_plan = plan(scenario, Naming("n0"), roles)
    accepted = {tx.id: frozenset(r.lower() for r in tx.rcpts) for tx in the_plan.injections}
    return the_plan, Observation((), accepted=accepted)


@pytest.mark.parametrize(("mode", "hides"), [("strip", True), ("empty", True), ("separate", False)])
def test_an_mx_only_sut_has_a_bcc_to_hide_when_the_relay_carries_it(mode: BccMode, hides: bool) -> None:
    """r1 writing to u1 and Bcc'ing u2 reaches an mx-only SUT as one transaction to both (unless
    the author's agent sent the blind copy separately): the SUT must keep u2 from u1."""
    story = (Submit("m1", "r1", ("u1",), bcc=("u2",), bcc_mode=mode),)
    scenario = Scenario(World(("u1", "u2"), ("r1",)), story)
    the_plan, observation = everything_accepted(scenario, ("mx",))
    assert BY_ID["bcc-not-disclosed"].exercised(the_plan, observation) == hides


@pytest.mark.parametrize(("to", "bcc", "hides"), [
    (("u2",), ("u3",), True),   # u2 must not learn of u3
    (("u2",), ("u2",), False),  # u2 sees only himself
    (("u2",), (), False),
])
def test_a_submission_server_must_hide_other_peoples_bcc(to: tuple[str, ...], bcc: tuple[str, ...],
                                                         hides: bool) -> None:
    """A submitted message Bcc'ing someone gives the SUT a Bcc to hide from everyone else."""
    scenario = Scenario(World(("u1", "u2", "u3")), (Submit("m1", "u1", to, bcc=bcc),))
    the_plan, observation = everything_accepted(scenario, ("mx", "submission"))
    assert BY_ID["bcc-not-disclosed"].exercised(the_plan, observation) == hides


def test_refused_paths_exercise_nothing() -> None:
    """A SUT that refused every recipient owes nothing: copy-per-path has no evidence."""
    scenario = Scenario(World(("u1",), ("r1",)), (Submit("m1", "r1", ("u1",)),))
    the_plan = plan(scenario, Naming("n0"))
    refused = Observation((), accepted={tx.id: frozenset() for tx in the_plan.injections})
    assert not any(inv.exercised(the_plan, refused) for inv in CATALOGUE)


# A store that strips the trace leaves copies no invariant but trace-prepend-only can attribute;
# judging those is the damaged-trace rule's business (issue 8 item 7), not evidence's.
@pytest.mark.parametrize("policy_name", ["reference", *(p for p in KNOWN_BAD if p != "strip-received")])
@settings(max_examples=60, deadline=None)
@given(scenario=scenarios())
def test_every_violation_is_evidence(policy_name: str, scenario: Scenario) -> None:
    """An example that breaks an invariant always counts as exercising it."""
    run = execute(InProcessSUT(policy_name), scenario)
    for invariant in CATALOGUE:
        if invariant.check(run.plan, run.observation):
            assert invariant.exercised(run.plan, run.observation), invariant.id
