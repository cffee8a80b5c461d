"""List expansion, aliases and forwards keep the message's identity."""

import pytest
from hypothesis import given

from mailconform.run import Judge
from mailconform.specs.scenario import Scenario
from mailconform.strategies import scenarios


@pytest.mark.invariant("message-id-preserved")
@given(scenario=scenarios())
def test_message_id_preserved(judge: Judge, scenario: Scenario) -> None:
    """Every copy, by whatever list, alias or forward, keeps its originator's Message-ID."""
    judge(scenario, "message-id-preserved")
