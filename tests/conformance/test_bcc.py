"""Blind carbon copies stay blind."""

import pytest
from hypothesis import given

from strategies import scenarios
from suts.base import SystemUnderTest, assert_invariant


@pytest.mark.invariant("bcc-not-disclosed")
@given(scenario=scenarios())
def test_bcc_not_disclosed(sut: SystemUnderTest, scenario) -> None:
    """No copy received by a To or Cc recipient shows who was blind-copied."""
    assert_invariant(sut, scenario, "bcc-not-disclosed")
