"""Blind carbon copies stay blind."""

import pytest
from hypothesis import given

from mailconform.run import Judge
from mailconform.specs.scenario import Scenario
from mailconform.strategies import scenarios


@pytest.mark.invariant("bcc-not-disclosed")
@given(scenario=scenarios())
def test_bcc_not_disclosed(judge: Judge, scenario: Scenario) -> None:
    """No copy received by a To or Cc recipient shows who was blind-copied."""
    judge(scenario, "bcc-not-disclosed")
