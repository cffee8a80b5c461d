"""Resent messages are the same message, introduced again."""

import pytest
from hypothesis import given

from mailconform.specs.scenario import Scenario
from mailconform.strategies import scenarios
from mailconform.suts.base import SystemUnderTest, assert_invariant


@pytest.mark.invariant("resent-keeps-message-id")
@given(scenario=scenarios())
def test_resent_keeps_message_id(sut: SystemUnderTest, scenario: Scenario) -> None:
    """A resent copy keeps the original Message-ID and the Resent block it was sent with."""
    assert_invariant(sut, scenario, "resent-keeps-message-id")
