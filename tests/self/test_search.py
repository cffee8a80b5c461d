"""The search: each scenario drawn and played once for every invariant; properties meet its scenarios."""

import pytest
from hypothesis import Phase, settings

from mailconform import run
from mailconform.conformance import test_resends
from mailconform.run import Judge
from mailconform.specs.explain import InvariantViolation
from mailconform.specs.invariants import BY_ID
from mailconform.specs.scenario import Scenario
from mailconform.strategies import scenarios
from mailconform.suts.base import Player
from mailconform.suts.inprocess import InProcessSUT

PROFILE = settings(max_examples=30, database=None, deadline=None)


def test_each_scenario_is_drawn_and_played_once_for_every_invariant(monkeypatch: pytest.MonkeyPatch) -> None:
    """The search draws each scenario once, plays it once, and every invariant counts it."""
    drawn: list[Scenario] = []
    monkeypatch.setattr(run, "scenarios", lambda: scenarios().map(lambda s: drawn.append(s) or s))
    judge = Judge(Player(InProcessSUT()))
    judge.search(list(BY_ID), PROFILE, 1)
    assert len(drawn) == 30 and judge.player.plays == 31  # and the seed story, given, not drawn
    assert {i: t.examples for i, t in judge.tallies.items()} == dict.fromkeys(BY_ID, 31)
    assert not judge.search_cut and all(t.first_violation is None for t in judge.tallies.values())


def test_a_property_meets_the_searched_scenarios_up_to_the_failure() -> None:
    """After the search broke an invariant, its property (same seed) fails on the scenario the
    search broke it with, having made no play of its own, and counts no example twice."""
    judge = Judge(Player(InProcessSUT("strip-resent")))
    judge.search(list(BY_ID), settings(PROFILE, max_examples=60), 7)
    tally = judge.tallies["resent-keeps-message-id"]
    assert tally.first_violation is not None and tally.examples > 1  # a drawn story, not the seed story
    assert all(t.first_violation is None for i, t in judge.tallies.items() if i != "resent-keeps-message-id")
    plays, examples, broke_on = judge.player.plays, tally.examples, tally.last_failing
    no_shrinking = settings(PROFILE, max_examples=60, phases=[Phase.explicit, Phase.generate])
    with pytest.raises(InvariantViolation):
        run.seed(7)(no_shrinking(test_resends.test_resent_keeps_message_id))(judge=judge)
    assert judge.player.plays == plays and tally.examples == examples
    assert tally.last_failing == broke_on
