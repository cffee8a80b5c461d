"""Trace fields: prepended, never removed; Return-Path from the last hop."""

import pytest
from hypothesis import given

from mailconform.specs.scenario import Scenario
from mailconform.strategies import scenarios
from mailconform.suts.base import SystemUnderTest, assert_invariant


@pytest.mark.invariant("trace-prepend-only")
@given(scenario=scenarios())
def test_trace_prepend_only(sut: SystemUnderTest, scenario: Scenario) -> None:
    """The Received fields a copy arrived with survive below the SUT's own, in order."""
    assert_invariant(sut, scenario, "trace-prepend-only")


@pytest.mark.invariant("return-path-is-last-envelope-sender")
@given(scenario=scenarios())
def test_return_path_is_last_envelope_sender(sut: SystemUnderTest, scenario: Scenario) -> None:
    """Each filed copy's Return-Path is the MAIL FROM of the transaction that brought it."""
    assert_invariant(sut, scenario, "return-path-is-last-envelope-sender")
