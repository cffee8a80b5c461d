"""Delivery paths: every accepted path is delivered exactly once."""

import pytest
from hypothesis import example, given

from mailconform.specs.scenario import Scenario
from mailconform.strategies import SEED_STORY, scenarios
from mailconform.suts.base import SystemUnderTest, assert_invariant


@pytest.mark.invariant("copy-per-path")
@example(scenario=SEED_STORY)  # always tried first: the story this suite exists for
@given(scenario=scenarios())
def test_copy_per_path(sut: SystemUnderTest, scenario: Scenario) -> None:
    """Every path the SUT accepted leaves a copy in its mailbox or a failure notice."""
    assert_invariant(sut, scenario, "copy-per-path")


@pytest.mark.invariant("no-phantom-copies")
@given(scenario=scenarios())
def test_no_phantom_copies(sut: SystemUnderTest, scenario: Scenario) -> None:
    """Without faults, no mailbox holds more copies of a path than the path carried."""
    assert_invariant(sut, scenario, "no-phantom-copies")
