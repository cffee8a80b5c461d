"""Blind carbon copies stay blind."""

import pytest
from hypothesis import given

from mailconform.specs.scenario import Scenario
from mailconform.strategies import scenarios
from mailconform.suts.base import SystemUnderTest, assert_invariant


@pytest.mark.invariant("bcc-not-disclosed")
@given(scenario=scenarios())
def test_bcc_not_disclosed(sut: SystemUnderTest, scenario: Scenario) -> None:
    """No copy received by a To or Cc recipient shows who was blind-copied."""
    assert_invariant(sut, scenario, "bcc-not-disclosed")
