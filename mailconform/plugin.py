"""The mailconform pytest plugin: SUT selection, Hypothesis profiles, reports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from mailconform.specs.explain import InvariantViolation
from mailconform.specs.report import Report
from mailconform.suts.base import SystemUnderTest
from mailconform.suts.config import load as load_config
from mailconform.suts.expectations import Expectation
from mailconform.suts.expectations import load as load_expectations
from mailconform.suts.registry import resolve
from mailconform.suts.wire import MailboxError, ProtocolError

# Scenarios run real I/O whose duration varies, so no deadline; Hypothesis's own
# health checks about slow or filtered data do not apply to a network SUT.
# The explain phase's line-coverage notes do not help read a mail story.
_COMMON: dict[str, Any] = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow],
                               phases=[p for p in Phase if p is not Phase.explain])
# Quick feedback while developing.
settings.register_profile("default", max_examples=40, **_COMMON)
# A CI gate: it keeps a counterexample database between runs, replayed first
# (Hypothesis's built-in "ci" profile would turn the database off).
settings.register_profile("ci", max_examples=60, print_blob=True,
                          database=DirectoryBasedExampleDatabase(".hypothesis/mailconform-ci"),
                          **_COMMON)
# Before a release: long searches.
settings.register_profile("thorough", max_examples=1000, **_COMMON)
settings.load_profile(os.environ.get("MAILCONFORM_PROFILE", "ci" if os.environ.get("CI") else "default"))

pytest_plugins = ["mailconform.reporting"]  # outcomes, evidence, progress, budget, exit status

REPORT = pytest.StashKey[Report]()
EXPECTED = pytest.StashKey[dict[str, Expectation] | None]()
EXIT_SUT_ERROR = 6
"""Exit status when the SUT could not be driven (unreachable, died, hung): no verdict either way."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mailconform")
    group.addoption("--sut", default="embedded",
                    help="system under test: embedded[:<policy>], embedded-lmtp[:<policy>], reference,"
                         " model:<policy> (default: embedded)")
    group.addoption("--sut-config", type=Path, default=None,
                    help="TOML file describing any server to test (overrides --sut)")
    group.addoption("--report-json", type=Path, default=None,
                    help="write one outcome per invariant, with counterexamples, to this file")
    group.addoption("--expectations", type=Path, default=None,
                    help="TOML of known outcomes (default: the --sut-config's `expectations`);"
                         " the run fails only where outcomes differ from it")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "invariant(id): the conformance property a test checks")
    config.stash[REPORT] = Report(sut=str(config.getoption("--sut-config") or config.getoption("--sut")))
    config.stash[EXPECTED] = _expectations(config)
    config.stash[REPORT].expected = {k: asdict(e) for k, e in (config.stash[EXPECTED] or {}).items()}


def _expectations(config: pytest.Config) -> dict[str, Expectation] | None:
    path = config.getoption("--expectations")
    sut_config = config.getoption("--sut-config")
    try:
        if path is None and sut_config is not None:
            path = load_config(sut_config, dict(os.environ)).expectations
        return load_expectations(path) if path else None
    except ValueError as error:
        raise pytest.UsageError(f"mailconform: {error}") from None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """An invariant the SUT is known to fail is a strict xfail: a fix shows up as XPASS."""
    expected = config.stash[EXPECTED] or {}
    for item in items:
        marker = item.get_closest_marker("invariant")
        known = expected.get(marker.args[0]) if marker else None
        if known and known.outcome == "failed":
            # Only the invariant's own violation is the expected failure: never a crash or a timeout.
            item.add_marker(pytest.mark.xfail(strict=True, raises=InvariantViolation,
                                              reason=f"expected: {known.reason}"))




@pytest.fixture(scope="session")
def sut(request: pytest.FixtureRequest) -> Iterator[SystemUnderTest]:
    """The system under test named on the command line, reachable and set up."""
    config = request.config
    try:
        system = resolve(config.getoption("--sut"), config.getoption("--sut-config"))
    except (ValueError, OSError, RuntimeError) as error:
        pytest.exit(f"mailconform: {error}", returncode=4)
    try:
        system.preflight()
    except (OSError, RuntimeError, ProtocolError, MailboxError) as error:
        system.close()
        pytest.exit(f"mailconform: {system.name} is not ready: {error}", returncode=EXIT_SUT_ERROR)
    report = config.stash[REPORT]
    report.sut, report.transport = system.name, system.transport
    yield system
    system.close()
