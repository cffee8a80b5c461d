"""The suite catches every known-bad policy and shrinks it to its minimal story."""

import pytest
from hypothesis import find, given, settings

from mailconform.specs.invariants import BY_ID, CATALOGUE
from mailconform.specs.scenario import Scenario
from mailconform.strategies import scenarios
from mailconform.suts.base import SystemUnderTest, assert_invariant, execute
from mailconform.suts.inprocess import InProcessSUT
from mailconform.suts.policies import KNOWN_BAD, policy
from mailconform.suts.registry import resolve

# The smallest story that breaks each rule: (messages, transactions into the SUT) when
# the SUT is also its users' submission server, as the in-process and SMTP ones are.
MINIMAL = {
    "dedup-message-id": (1, 2),
    "dedup-cyrus": (1, 2),
    "dedup-resent-aware": (1, 2),
    "dedup-content-hash": (1, 2),
    "dedup-window": (1, 2),
    "dedup-time-window": (1, 2),
    "leak-bcc": (1, 1),
    "rewrite-message-id": (1, 1),
    "strip-received": (1, 1),
    "deliver-twice": (1, 1),
    "return-path-from-header": (1, 2),  # a post to a list: submission, then the list's copy
    "strip-resent": (1, 2),  # the first event always submits; then the resend
    "drop-over-quota": (1, 3),
}
# An LMTP store is final delivery only: the suite's agents and list reach it directly.
MINIMAL_MX_ONLY = {**MINIMAL, "return-path-from-header": (1, 1)}
TRANSPORTS = ("model", "embedded", "embedded-lmtp")
_SEARCH = settings(max_examples=3000, database=None, deadline=None, derandomize=True)


def minimal_counterexample(sut: SystemUnderTest, invariant_id: str) -> Scenario:
    check = BY_ID[invariant_id].check

    def violates(scenario: Scenario) -> bool:
        run = execute(sut, scenario)
        return bool(check(run.plan, run.observation))
    return find(scenarios(), violates, settings=_SEARCH)


def test_every_known_bad_policy_has_a_minimal_story() -> None:
    """The table of minimal stories covers exactly the known-bad policies."""
    assert set(MINIMAL) == set(KNOWN_BAD)


def test_every_invariant_is_broken_by_some_policy() -> None:
    """No invariant is a check that cannot fail: a known-bad policy breaks each one."""
    assert {policy(name).breaks for name in KNOWN_BAD} == {inv.id for inv in CATALOGUE}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("policy_name", KNOWN_BAD)
def test_known_bad_policy_is_caught_with_a_minimal_story(policy_name: str, transport: str) -> None:
    """Each known-bad policy breaks its invariant, and the shrunk story has the minimal size."""
    sut = resolve(f"{transport}:{policy_name}")
    try:
        if policy_name == "leak-bcc" and "submission" not in sut.roles:
            pytest.skip("Bcc handling belongs to the submission role, which an LMTP store lacks")
        invariant_id = policy(policy_name).breaks
        assert invariant_id
        scenario = minimal_counterexample(sut, invariant_id)
        run = execute(sut, scenario)
    finally:
        sut.close()
    violations = BY_ID[invariant_id].check(run.plan, run.observation)
    assert violations
    minimal = MINIMAL if "submission" in sut.roles else MINIMAL_MX_ONLY
    assert (len(scenario.messages), len(run.plan.injections)) == minimal[policy_name], scenario.story()
    assert len({v.mailbox for v in violations}) == 1, violations


@pytest.mark.parametrize("policy_name", ["reference", "bounce-over-quota"])
@given(scenario=scenarios())
def test_conforming_policies_hold_every_invariant(policy_name: str, scenario: Scenario) -> None:
    """The reference and a store that bounces over quota hold every invariant."""
    sut = InProcessSUT(policy_name)
    for invariant in CATALOGUE:
        assert_invariant(sut, scenario, invariant.id)
