"""Resent messages are the same message, introduced again."""

import pytest
from hypothesis import given

from mailconform.run import Judge
from mailconform.specs.scenario import Scenario
from mailconform.strategies import scenarios


@pytest.mark.invariant("resent-keeps-message-id")
@given(scenario=scenarios())
def test_resent_keeps_message_id(judge: Judge, scenario: Scenario) -> None:
    """A resent copy keeps the original Message-ID and the Resent block it was sent with."""
    judge(scenario, "resent-keeps-message-id")
