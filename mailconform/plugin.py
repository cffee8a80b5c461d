"""The mailconform pytest plugin: SUT selection, Hypothesis profiles, reports."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    ExampleDatabase,
    MultiplexedDatabase,
    ReadOnlyDatabase,
)
from hypothesis.errors import InvalidArgument

from mailconform.run import SutBroken, first_line
from mailconform.specs.explain import InvariantViolation
from mailconform.specs.report import Report
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
# Registered under mailconform-* names and applied only to the conformance properties:
# a project that installs the plugin keeps its own Hypothesis settings for its own tests.
PROFILES: dict[str, dict[str, Any]] = {
    # Quick feedback while developing.
    "default": dict(max_examples=40),
    # A CI gate: it keeps a counterexample database between runs, replayed first
    # (Hypothesis's built-in "ci" profile would turn the database off).
    "ci": dict(max_examples=60, print_blob=True,
               database=DirectoryBasedExampleDatabase(".hypothesis/mailconform-ci")),
    # Before a release: long searches.
    "thorough": dict(max_examples=1000),
}
for _name, _values in PROFILES.items():
    settings.register_profile(f"mailconform-{_name}", **_values, **_COMMON)

# outcomes, evidence, progress, budget, exit status; diagnosis, impact and bundles after a failure
pytest_plugins = ["mailconform.reporting", "mailconform.followup"]

REPORT = pytest.StashKey[Report]()
EXPECTED = pytest.StashKey[dict[str, Expectation] | None]()
SETTINGS = pytest.StashKey[settings]()
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
    group.addoption("--db", type=Path, default=None,
                    help="Hypothesis example database directory for the conformance properties"
                         " (default: $MAILCONFORM_DB, else the --sut-config's `db`, else the"
                         " profile's); saved counterexamples replay first")
    group.addoption("--db-shared", default=None, metavar="DIR_OR_REDIS_URL",
                    help="a further example database, read but never written (default:"
                         " $MAILCONFORM_DB_SHARED): e.g. the main branch's, or redis://HOST:PORT/N")


_PATH_OPTIONS = ("--sut-config", "--report-json", "--expectations", "--db")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """Run again with `--opt=PATH` when `--opt PATH` named an existing file.

    pytest picks its rootdir, configuration file and initial conftests before any
    plugin's options are known, reading each existing path among the arguments as
    a test path: `--sut-config /elsewhere/x.toml` would make it look for the
    configuration under /elsewhere. One token per option reads right.
    """
    if hasattr(config, "workerinput"):  # an xdist worker runs what its controller decided
        return None
    given = [str(arg) for arg in config.invocation_params.args]
    joined = _joined(given)
    if joined == given:
        return None
    return int(pytest.main(joined, plugins=list(config.invocation_params.plugins or ())))


def _joined(args: list[str]) -> list[str]:
    out: list[str] = []
    for arg in args:
        if out and out[-1] in _PATH_OPTIONS and Path(arg).exists():
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "invariant(id): the conformance property a test checks")
    config.stash[REPORT] = Report(sut=_sut_name(config))
    config.stash[EXPECTED] = _expectations(config)
    config.stash[REPORT].expected = {k: asdict(e) for k, e in (config.stash[EXPECTED] or {}).items()}
    config.stash[SETTINGS] = conformance_settings(config)


def conformance_settings(config: pytest.Config) -> settings:
    """The profile MAILCONFORM_PROFILE names (ci when CI is set), with the chosen example database."""
    name = os.environ.get("MAILCONFORM_PROFILE") or ("ci" if os.environ.get("CI") else "default")
    if name not in PROFILES:
        raise pytest.UsageError(f"mailconform: MAILCONFORM_PROFILE={name!r} is not a profile;"
                                f" use one of {', '.join(PROFILES)}")
    profile = settings.get_profile(f"mailconform-{name}")
    local = _database_path(config)
    shared = config.getoption("--db-shared") or os.environ.get("MAILCONFORM_DB_SHARED")
    if local is None and not shared:
        return profile
    own = DirectoryBasedExampleDatabase(local) if local else profile.database
    if shared:
        # Read the shared examples, write only our own: a job never changes what others replay.
        own = MultiplexedDatabase(*filter(None, [own]), ReadOnlyDatabase(shared_database(shared)))
    return settings(profile, database=own)


def shared_database(where: str) -> ExampleDatabase:
    """A directory, or a Redis URL (with the `redis` extra installed)."""
    if not where.startswith(("redis://", "rediss://", "unix://")):
        return DirectoryBasedExampleDatabase(where)
    try:
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase
    except ImportError:
        raise pytest.UsageError(f"mailconform: {where} needs Redis support:"
                                " pip install 'mailconform[redis]'") from None
    return RedisExampleDatabase(redis.Redis.from_url(where))


def _database_path(config: pytest.Config) -> Path | None:
    if config.getoption("--db"):
        return Path(config.getoption("--db"))
    if os.environ.get("MAILCONFORM_DB"):
        return Path(os.environ["MAILCONFORM_DB"])
    sut_config = config.getoption("--sut-config")
    if sut_config is None:
        return None
    try:
        return load_config(sut_config, dict(os.environ)).db
    except ValueError:
        return None  # the sut fixture reports a broken config, with the SUT's context


def _sut_name(config: pytest.Config) -> str:
    """The SUT's name for the report, known even when it never becomes ready."""
    path = config.getoption("--sut-config")
    try:
        return load_config(path, dict(os.environ)).name if path else str(config.getoption("--sut"))
    except ValueError:
        return str(path)  # the sut fixture reports the mistake


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
        test = getattr(item, "obj", None)
        if marker and getattr(test, "is_hypothesis_test", False):
            # Our properties only, as an outer @settings would; one that pins its own keeps them.
            with contextlib.suppress(InvalidArgument):
                config.stash[SETTINGS](test)
        known = expected.get(marker.args[0]) if marker else None
        if known and known.outcome == "failed":
            # Only the invariant's own violation is the expected failure: never a crash or a timeout.
            item.add_marker(pytest.mark.xfail(strict=True, raises=InvariantViolation,
                                              reason=f"expected: {known.reason}"))




OPENED_SUT = pytest.StashKey[SystemUnderTest]()
"""The SUT a worker's share of the search opened before its tests: the `sut` fixture's, then."""


@pytest.fixture(scope="session")
def sut(request: pytest.FixtureRequest) -> Iterator[SystemUnderTest]:
    """The system under test named on the command line, reachable and set up."""
    opened = request.config.stash.get(OPENED_SUT, None)
    if opened is not None:
        yield opened  # closed by what opened it
        return
    system = open_sut(request.config)
    yield system
    system.close()


def open_sut(config: pytest.Config) -> SystemUnderTest:
    """The SUT the options name, preflighted; SutBroken if it is not ready."""
    try:
        system = resolve(config.getoption("--sut"), config.getoption("--sut-config"))
    except (ValueError, OSError, RuntimeError) as error:
        pytest.exit(f"mailconform: {error}", returncode=4)
    report = config.stash[REPORT]
    report.sut, report.transport = system.name, system.transport  # named, even if nothing runs
    try:
        system.preflight()
    except (OSError, RuntimeError, ProtocolError, MailboxError) as error:
        system.close()
        # Not pytest.exit: that would crash a pytest-xdist worker.  The reporting hooks record
        # an error (exit status EXIT_SUT_ERROR) and leave the other invariants "not run".
        reason = error.what if isinstance(error, SutError) else first_line(error)
        raise SutBroken(f"{system.name} is not ready: {reason}") from None
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter and capture:
        with capture.global_and_fixture_disabled():  # shown at once, not only with a failure
            for line in getattr(system, "notes", ()):  # where to relay, what is left behind
                reporter.write_line(f"mailconform: {system.name}: {line}")
    return system
