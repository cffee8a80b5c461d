"""List expansion, aliases and forwards keep the message's identity."""

import pytest
from hypothesis import given

from mailconform.specs.scenario import Scenario
from mailconform.strategies import scenarios
from mailconform.suts.base import SystemUnderTest, assert_invariant


@pytest.mark.invariant("message-id-preserved")
@given(scenario=scenarios())
def test_message_id_preserved(sut: SystemUnderTest, scenario: Scenario) -> None:
    """Every copy, by whatever list, alias or forward, keeps its originator's Message-ID."""
    assert_invariant(sut, scenario, "message-id-preserved")
