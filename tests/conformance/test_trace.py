"""Trace fields: prepended, never removed; Return-Path from the last hop."""

import pytest
from hypothesis import given

from mailconform.run import Judge
from mailconform.specs.scenario import Scenario
from mailconform.strategies import scenarios


@pytest.mark.invariant("trace-prepend-only")
@given(scenario=scenarios())
def test_trace_prepend_only(judge: Judge, scenario: Scenario) -> None:
    """The Received fields a copy arrived with survive below the SUT's own, in order."""
    judge(scenario, "trace-prepend-only")


@pytest.mark.invariant("return-path-is-last-envelope-sender")
@given(scenario=scenarios())
def test_return_path_is_last_envelope_sender(judge: Judge, scenario: Scenario) -> None:
    """Each filed copy's Return-Path is the MAIL FROM of the transaction that brought it."""
    judge(scenario, "return-path-is-last-envelope-sender")
