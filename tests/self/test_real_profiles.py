"""Every real-system profile under suts/real/ is complete and loads: start script, SUT description,
expectations with their reasons, README."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailconform.suts import expectations
from mailconform.suts.config import load

PROFILES = sorted(toml.parent for toml in (Path(__file__).parents[2] / "suts" / "real").glob("*/sut.toml"))


@pytest.mark.parametrize("profile", PROFILES, ids=[p.name for p in PROFILES])
def test_profile_is_complete(profile: Path) -> None:
    """A profile has an executable start, a README, a sut.toml named after its directory, and its
    provisioning command exists where the suite runs it."""
    assert os.access(profile / "start", os.X_OK), f"{profile.name}/start is not executable"
    assert (profile / "README.md").is_file(), f"{profile.name} has no README.md"
    config = load(profile / "sut.toml", {})
    assert config.name == profile.name
    assert config.expectations is not None and config.expectations.is_file()
    if config.provision:  # the suite runs it in the TOML file's directory
        command = config.provision.split()[0]
        assert os.access(profile / command, os.X_OK), f"{profile.name}: provision runs {command}, not found"


@pytest.mark.parametrize("profile", PROFILES, ids=[p.name for p in PROFILES])
def test_expected_failures_say_why(profile: Path) -> None:
    """Each expected failure carries a reason and a link to the behaviour's documentation."""
    for invariant, expected in expectations.load(profile / "expectations.toml").items():
        if expected.outcome == "failed":
            assert expected.reason and not expected.reason.startswith("TODO"), f"{profile.name} [{invariant}]"
            assert expected.link.startswith("https://"), f"{profile.name} [{invariant}] has no link"
