"""Delivery paths: every accepted path is delivered exactly once."""

import pytest
from hypothesis import example, given

from mailconform.run import Judge
from mailconform.specs.scenario import Scenario
from mailconform.strategies import SEED_STORY, scenarios


@pytest.mark.invariant("copy-per-path")
@example(scenario=SEED_STORY)  # always tried first: the story this suite exists for
@given(scenario=scenarios())
def test_copy_per_path(judge: Judge, scenario: Scenario) -> None:
    """Every path the SUT accepted leaves a copy in its mailbox or a failure notice."""
    judge(scenario, "copy-per-path")


@pytest.mark.invariant("no-phantom-copies")
@given(scenario=scenarios())
def test_no_phantom_copies(judge: Judge, scenario: Scenario) -> None:
    """Without faults, no mailbox holds more copies of a path than the path carried."""
    judge(scenario, "no-phantom-copies")
