"""The suite catches every known-bad policy, shrinks it to its minimal story, and passes the
conforming ones."""

import os
from collections import Counter

import pytest
from hypothesis import find, given, seed, settings

from mailconform.conformance import test_paths as paths_properties
from mailconform.run import Judge
from mailconform.specs.explain import InvariantViolation
from mailconform.specs.invariants import BY_ID, CATALOGUE, owed
from mailconform.specs.model import Plan, plan
from mailconform.specs.naming import Naming
from mailconform.specs.observation import Observation
from mailconform.specs.scenario import MailingList, Resend, Scenario, SendAgain, Submit, World
from mailconform.strategies import SEED_STORY, scenarios
from mailconform.suts.base import Player, Run, SystemUnderTest, assert_invariant, execute
from mailconform.suts.embedded import EmbeddedSUT
from mailconform.suts.inprocess import InProcessSUT
from mailconform.suts.policies import CONFORMING, KNOWN_BAD, policy
from mailconform.suts.registry import resolve

# The story each rule's search shrinks to: (messages, transactions into the SUT) when the
# SUT is also its users' submission server, as the in-process and SMTP ones are.  Where the
# shrinker stops short of the smallest story (the leaks: STORIES has a one-message one),
# the table says what it reaches, so a change in shrinking shows up here.
MINIMAL = {
    "dedup-message-id": (1, 2),  # u1 sends m1 to u1, then resends it to u1
    "dedup-cyrus": (1, 2),
    "dedup-resent-aware": (1, 2),
    "dedup-content-hash": (1, 2),
    "dedup-window": (1, 2),
    "dedup-time-window": (1, 2),
    "leak-bcc": (1, 1),  # u1 sends m1 cc u2 bcc a1 (an alias of u1): u2's copy shows a1
    "leak-apparently-to": (2, 2),  # ...; r1 sends m2 bcc u1, u2: one transaction to both
    "leak-received-for": (2, 3),
    "rewrite-message-id": (1, 1),
    "strip-received": (1, 1),
    "reverse-received": (1, 1),
    "deliver-twice": (1, 1),
    "return-path-from-header": (1, 2),  # a post to a list: submission, then the list's copy
    "strip-resent": (1, 2),  # the first event always submits; then the resend
    "drop-over-quota": (1, 5),  # the fifth copy in one mailbox
}
# An LMTP store is final delivery only: the suite's agents and list reach it directly.
MINIMAL_MX_ONLY = {**MINIMAL, "return-path-from-header": (1, 1),
                   "leak-apparently-to": (1, 1), "leak-received-for": (1, 1)}
TRANSPORTS = ("model", "embedded", "embedded-lmtp")
_SEARCH = settings(max_examples=3000, database=None, deadline=None, derandomize=True)

_LIST_WORLD = World(("u1",), ("r1",), lists=(MailingList("L1", ("u1",)),))
_TWO_USERS = World(("u1", "u2"), ("r1",))
_PLAIN = Scenario(_TWO_USERS, (Submit("m1", "r1", ("u1",)),))
_BLIND = Scenario(_TWO_USERS, (Submit("m1", "r1", ("u1",), bcc=("u2",)),))
# One hand-written story per known-bad policy, small enough to read.
STORIES = {
    **dict.fromkeys(("dedup-message-id", "dedup-cyrus", "dedup-resent-aware", "dedup-content-hash",
                     "dedup-window", "dedup-time-window", "reverse-received"), SEED_STORY),
    "leak-bcc": Scenario(_TWO_USERS, (Submit("m1", "u2", (), cc=("u1",), bcc=("r1",)),)),
    "leak-apparently-to": _BLIND,
    "leak-received-for": _BLIND,
    "rewrite-message-id": _PLAIN,
    "strip-received": _PLAIN,
    "deliver-twice": _PLAIN,
    "return-path-from-header": Scenario(_LIST_WORLD, (Submit("m1", "r1", ("L1",)),)),
    "strip-resent": Scenario(_TWO_USERS, (Submit("m1", "r1", ("u1",)), Resend("m1", "u1", ("u2",)))),
    "drop-over-quota": Scenario(_TWO_USERS, tuple(
        Submit(f"m{n}", "r1", ("u1",), message_id=f"k{n}") for n in range(1, 6))),
}


def broken(run: Run) -> set[str]:
    return {inv.id for inv in CATALOGUE if inv.check(run.plan, run.observation)}


def minimal_counterexample(sut: SystemUnderTest, invariant_id: str) -> Scenario:
    check = BY_ID[invariant_id].check

    def violates(scenario: Scenario) -> bool:
        run = execute(sut, scenario)
        return bool(check(run.plan, run.observation))
    return find(scenarios(), violates, settings=_SEARCH)


def test_every_known_bad_policy_has_a_minimal_story() -> None:
    """The tables of minimal and hand-written stories cover exactly the known-bad policies."""
    assert set(MINIMAL) == set(STORIES) == set(KNOWN_BAD)


@pytest.mark.parametrize("invariant_id", [inv.id for inv in CATALOGUE])
def test_every_invariant_is_broken_by_some_policy(invariant_id: str) -> None:
    """Each invariant's check fails on a known-bad policy's story and holds for the reference."""
    breakers = [name for name in KNOWN_BAD if policy(name).breaks == invariant_id]
    assert breakers
    for name in breakers:
        story = STORIES[name]
        assert BY_ID[invariant_id].check(*_judged(InProcessSUT(name), story)), name
        assert not broken(execute(InProcessSUT(), story)), name


def _judged(sut: SystemUnderTest, story: Scenario) -> tuple[Plan, Observation]:
    run = execute(sut, story)
    return run.plan, run.observation


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("policy_name", KNOWN_BAD)
def test_known_bad_policy_is_caught_with_a_minimal_story(policy_name: str, transport: str) -> None:
    """Each known-bad policy breaks its invariant, and only it, in a shrunk story of minimal size."""
    sut = resolve(f"{transport}:{policy_name}")
    try:
        if policy_name == "leak-bcc" and "submission" not in sut.roles:
            pytest.skip("the Bcc field is the submission role's to remove, which an LMTP store lacks")
        invariant_id = policy(policy_name).breaks
        assert invariant_id
        scenario = minimal_counterexample(sut, invariant_id)
        run = execute(sut, scenario)
    finally:
        sut.close()
    violations = BY_ID[invariant_id].check(run.plan, run.observation)
    assert violations
    # A damaged trace or a dropped copy must not be blamed on a wrong path by other invariants.
    assert broken(run) == {invariant_id}, scenario.story()
    minimal = MINIMAL if "submission" in sut.roles else MINIMAL_MX_ONLY
    assert (len(scenario.messages), len(run.plan.injections)) == minimal[policy_name], scenario.story()
    if invariant_id != "bcc-not-disclosed":  # a disclosure shows every recipient the others
        assert len({v.mailbox for v in violations}) == 1, violations


@pytest.mark.parametrize("policy_name", CONFORMING)
@given(scenario=scenarios())
def test_conforming_policies_hold_every_invariant(policy_name: str, scenario: Scenario) -> None:
    """The reference, a store that bounces over quota, one that refuses a duplicate body at
    the final dot (Courier dupfilter) and one that files an identical retransmission once all
    hold every invariant."""
    sut = InProcessSUT(policy_name)
    for invariant in CATALOGUE:
        assert_invariant(sut, scenario, invariant.id)


# Each SendAgain repeats the route of the first transmission: one path, owed at least once.
_RETRANSMITTED = Scenario(World(("u1",), ("r1",)), (Submit("m1", "r1", ("u1",)), SendAgain("m1")))


def test_dedup_exact_files_a_retransmission_once_and_conforms() -> None:
    """dedup-exact keeps one copy of an identical retransmission (the reference keeps two), and
    both pass every invariant; a resend over another route is still filed."""
    kept = execute(InProcessSUT("dedup-exact"), _RETRANSMITTED)
    reference = execute(InProcessSUT(), _RETRANSMITTED)
    assert (len(kept.observation.copies), len(reference.observation.copies)) == (1, 2)
    assert broken(kept) == broken(reference) == set()
    resent = Scenario(_RETRANSMITTED.world, (*_RETRANSMITTED.events, Resend("m1", "r1", ("u1",))))
    assert len(execute(InProcessSUT("dedup-exact"), resent).observation.copies) == 2


def test_refuse_duplicate_refuses_at_the_dot_and_conforms() -> None:
    """refuse-duplicate answers 5xx to the list's copy of the seed story and files nothing it
    accepted less: a conforming refusal."""
    run = execute(InProcessSUT("refuse-duplicate"), SEED_STORY)
    refused = [tx.id for tx in run.plan.injections if not run.observation.accepted[tx.id]]
    assert len(refused) == 1
    (said,) = run.observation.replies[refused[0]].values()
    assert "550" in said
    assert broken(run) == set()
    assert len(run.observation.copies_in(run.plan.naming.address("u1"))) == 1


def test_dedup_window_forgets_what_dedup_message_id_remembers() -> None:
    """With a second Message-ID in between, dedup-window has evicted the first and files the
    resend that dedup-message-id drops; on the seed story both drop the list's copy."""
    world = World(("u1",), ("r1",))
    story = Scenario(world, (Submit("m1", "r1", ("u1",)), Submit("m2", "r1", ("u1",), message_id="k2"),
                             Resend("m1", "r1", ("u1",))))
    window, message_id = (execute(InProcessSUT(name), story) for name in ("dedup-window", "dedup-message-id"))
    assert (len(window.observation.copies), len(message_id.observation.copies)) == (3, 2)
    assert broken(window) == set() and broken(message_id) == {"copy-per-path"}
    assert all(broken(execute(InProcessSUT(name), SEED_STORY)) == {"copy-per-path"}
               for name in ("dedup-window", "dedup-message-id"))


def test_embedded_policy_state_is_fresh_per_example() -> None:
    """A keyed policy's memory on the embedded server holds one example's keys, not the session's."""
    sut = EmbeddedSUT("dedup-cyrus")
    try:
        for _ in range(3):
            execute(sut, SEED_STORY)
        seen = sut._reference.policy._seen  # type: ignore[attr-defined]
        assert sum(map(len, seen.values())) == 1
    finally:
        sut.close()


SEEDS = int(os.environ.get("MAILCONFORM_STORY_SEEDS", "3"))
"""How many seeds the search-alone story test tries (the closing measurement used 20)."""


@pytest.mark.parametrize("transport", ("model", "embedded"))
@pytest.mark.parametrize("search_seed", range(SEEDS))
def test_search_alone_finds_a_distinct_path_story(transport: str, search_seed: int) -> None:
    """Without the pinned seed story, the copy-per-path property shrinks dedup-message-id to two
    distinct paths of one message into one mailbox (list + Bcc, alias or forward + direct,
    resend), never to a retransmission over one route or two messages that collide."""
    property_body = paths_properties.test_copy_per_path.hypothesis.inner_test
    searched = seed(search_seed)(settings(database=None, deadline=None, max_examples=3000)(
        given(scenario=scenarios())(property_body)))
    sut = resolve(f"{transport}:dedup-message-id")
    judge = Judge(Player(sut, capacity=1))
    try:
        with pytest.raises(InvariantViolation):
            searched(judge)
    finally:
        sut.close()
    story = judge.tallies["copy-per-path"].last_failing  # after shrinking, the minimal one
    assert story is not None
    the_plan = plan(story, Naming("x"), sut.roles)
    everything = Observation((), accepted={tx.id: frozenset(tx.rcpts) for tx in the_plan.injections})
    paths = {e.distinct_path: e for e in owed(the_plan, everything)}.values()
    paths_per_message = Counter((e.mailbox, e.message) for e in paths)
    assert max(paths_per_message.values()) >= 2, story.story()
    assert not any(isinstance(e, SendAgain) for e in story.events), story.story()


def test_seed_story_is_the_first_example_of_the_copy_per_path_property() -> None:
    """The conformance property still tries the seed story before any search."""
    examples = paths_properties.test_copy_per_path.hypothesis_explicit_examples
    assert examples[0].kwargs == {"scenario": SEED_STORY}
