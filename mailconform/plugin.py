"""The mailconform pytest plugin: SUT selection, Hypothesis profiles, reports."""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from mailconform.specs.explain import InvariantViolation
from mailconform.specs.report import Outcome, Report
from mailconform.suts.base import SutError, SystemUnderTest
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
    config.stash[_REPORT] = Report(sut=str(config.getoption("--sut-config") or config.getoption("--sut")))
    config.stash[_EXPECTED] = _expectations(config)


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
    expected = config.stash[_EXPECTED] or {}
    for item in items:
        marker = item.get_closest_marker("invariant")
        known = expected.get(marker.args[0]) if marker else None
        if known and known.outcome == "failed":
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"expected: {known.reason}"))


_REPORT = pytest.StashKey[Report]()
_EXPECTED = pytest.StashKey[dict[str, Expectation] | None]()


@pytest.fixture(scope="session")
def sut(request: pytest.FixtureRequest) -> Iterator[SystemUnderTest]:
    """The system under test named on the command line, reachable and set up."""
    config = request.config
    try:
        system = resolve(config.getoption("--sut"), config.getoption("--sut-config"))
    except (ValueError, OSError, RuntimeError) as error:
        pytest.exit(f"mailconform: {error}", returncode=4)
    report = config.stash[_REPORT]
    report.sut, report.transport = system.name, system.transport  # named, even if nothing runs
    try:
        system.preflight()
    except (OSError, RuntimeError, ProtocolError, MailboxError) as error:
        system.close()
        reason = error.what if isinstance(error, SutError) else error
        pytest.exit(f"mailconform: {system.name} is not ready: {reason}", returncode=4)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    for line in getattr(system, "notes", ()):  # where to relay, what is left behind
        if reporter:
            reporter.write_line(f"mailconform: {system.name}: {line}")
    yield system
    system.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    result = yield
    marker = item.get_closest_marker("invariant")
    if marker is None:
        return result
    if call.when == "call" or result.failed or result.skipped:
        violation = _violation(call.excinfo.value) if call.excinfo else None
        # A failure that is not an invariant violation means the SUT or the suite broke.
        if hasattr(result, "wasxfail"):  # known to fail: xfailed, or (not strict) passed
            outcome: Outcome = "failed" if result.skipped else "passed"
        elif result.failed and "XPASS(strict)" in str(result.longrepr):
            outcome = "passed"
        else:
            outcome = ("skipped" if result.skipped else "passed" if result.passed
                       else "failed" if violation else "error")
        item.config.stash[_REPORT].record(marker.args[0], outcome,
                                          violation.counterexample if violation else None)
    return result


def _violation(error: BaseException) -> InvariantViolation | None:
    if isinstance(error, InvariantViolation):
        return error
    if isinstance(error, BaseExceptionGroup):
        return next(filter(None, map(_violation, error.exceptions)), None)
    return None


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    report = config.stash[_REPORT]
    if report.outcomes:
        expected = config.stash[_EXPECTED]
        for line in report.table(None if expected is None else {k: e.outcome for k, e in expected.items()}):
            terminalreporter.write_line(line)
    path = config.getoption("--report-json")
    if path:
        path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        terminalreporter.write_line(f"mailconform: report written to {path}")
