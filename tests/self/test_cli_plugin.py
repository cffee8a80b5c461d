"""The plugin's options, profiles and example database, as a user meets them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailconform.plugin import shared_database

ROOT = Path(__file__).resolve().parents[2]


def pytest_in(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """pytest as a project that loads the mailconform plugin runs it (the checkout on its path)."""
    ours = ("CI", "MAILCONFORM_PROFILE", "MAILCONFORM_DB")
    environ = {k: v for k, v in os.environ.items() if k not in ours}
    environ.update({"PYTHONPATH": str(ROOT), **env})
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "mailconform.plugin", *args], cwd=cwd,
                          env=environ, capture_output=True, text=True, timeout=300)


def test_users_own_hypothesis_settings_are_untouched(tmp_path: Path) -> None:
    """With the plugin loaded and a mailconform profile chosen, a project's own properties keep
    Hypothesis's defaults."""
    (tmp_path / "test_own.py").write_text(
        "from hypothesis import given, settings, strategies as st\n\n"
        "@given(st.integers())\n"
        "def test_own_property(n):\n"
        "    assert settings.get_current_profile_name() == 'default'\n"
        "    assert settings.default.max_examples == 100\n"
        "    assert test_own_property.hypothesis.inner_test  # a plain @given test\n\n"
        "def test_own_settings_object():\n"
        "    assert settings().max_examples == 100 and settings().deadline is not None\n")
    result = pytest_in(tmp_path, "-q", "-p", "no:cacheprovider", MAILCONFORM_PROFILE="thorough")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "2 passed" in result.stdout


def test_profile_applies_to_the_conformance_properties(tmp_path: Path) -> None:
    """The default profile's 40 examples drive a conformance property (Hypothesis's own default is 100)."""
    result = pytest_in(ROOT, "-q", "--sut", "reference", "-k", "bcc", f"--db={tmp_path / 'db'}",
                       "--hypothesis-show-statistics", MAILCONFORM_PROFILE="default")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "- 40 passing examples" in result.stdout, result.stdout[-2000:]


def test_unknown_profile_is_one_usage_error() -> None:
    """MAILCONFORM_PROFILE naming no profile stops the run at once with one line and pytest's usage status."""
    result = pytest_in(ROOT, "-q", "--sut", "reference", MAILCONFORM_PROFILE="fast")
    assert result.returncode == 4
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip() == ("ERROR: mailconform: MAILCONFORM_PROFILE='fast' is not a profile;"
                                     " use one of default, ci, thorough")


def test_saved_counterexample_replays_first(tmp_path: Path) -> None:
    """A failing run saves its minimal story in the --db database; the next run replays it before
    generating anything, and reports the same story."""
    db, first, second = tmp_path / "db", tmp_path / "first.json", tmp_path / "second.json"
    common = ("-q", "--sut", "model:leak-bcc", "-k", "bcc", "--hypothesis-show-statistics")
    run1 = pytest_in(ROOT, *common, f"--db={db}", f"--report-json={first}")
    assert run1.returncode == 1 and any(db.iterdir()), run1.stdout[-2000:]
    run2 = pytest_in(ROOT, *common, f"--report-json={second}", MAILCONFORM_DB=str(db))
    assert run2.returncode == 1, run2.stdout[-2000:]
    statistics = run2.stdout.split("Hypothesis Statistics")[1]
    assert "during reuse phase" in statistics and "- 0 passing examples, 1 failing examples" in statistics
    assert "during generate phase" not in statistics

    def story(path: Path) -> object:
        entry = next(e for e in json.loads(path.read_text())["invariants"] if e["id"] == "bcc-not-disclosed")
        return entry["counterexample"]["scenario"]  # the symbolic story; names differ per run
    assert story(first) == story(second)
    assert story(first)


def test_shared_database_is_replayed_but_never_written(tmp_path: Path) -> None:
    """--db-shared examples replay first; what the run finds goes to its own --db, the shared one
    stays as it was (Hypothesis's MultiplexedDatabase over a ReadOnlyDatabase)."""
    shared, own = tmp_path / "main-branch-db", tmp_path / "job-db"
    common = ("-q", "--sut", "model:leak-bcc", "-k", "bcc", "--hypothesis-show-statistics")
    assert pytest_in(ROOT, *common, f"--db={shared}").returncode == 1

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    before = files(shared)
    assert before
    run = pytest_in(ROOT, *common, f"--db={own}", MAILCONFORM_DB_SHARED=str(shared))
    assert run.returncode == 1, run.stdout[-2000:]
    statistics = run.stdout.split("Hypothesis Statistics")[1]
    assert "during reuse phase" in statistics and "during generate phase" not in statistics
    assert files(shared) == before
    assert files(own)


def test_redis_database_names_the_extra_it_needs() -> None:
    """A Redis URL without the `redis` extra installed is one usage error saying what to install;
    with it, the database is Hypothesis's RedisExampleDatabase."""
    try:
        import redis  # noqa: F401
    except ImportError:
        with pytest.raises(pytest.UsageError, match=r"pip install 'mailconform\[redis\]'"):
            shared_database("redis://127.0.0.1:6379/0")
    else:
        from hypothesis.extra.redis import RedisExampleDatabase
        assert isinstance(shared_database("redis://127.0.0.1:6379/0"), RedisExampleDatabase)


def test_parallel_run_reports_what_a_serial_run_does(tmp_path: Path) -> None:
    """With xdist (-n 2) the controller's report holds every worker's outcomes and counterexamples,
    the same outcomes a serial run reports."""
    def report(*extra: str) -> tuple[str, str, list[tuple[str, str, bool]]]:
        path = tmp_path / f"report{len(extra)}.json"
        run = pytest_in(ROOT, "-q", "--sut", "model:leak-bcc", f"--report-json={path}",
                        f"--db={tmp_path / 'db'}{len(extra)}", *extra)  # keep the checkout's database clean
        assert run.returncode == 1, run.stdout[-2000:]
        data = json.loads(path.read_text())
        return data["sut"], data["transport"], [(e["id"], e["outcome"], bool(e["counterexample"]))
                                                for e in data["invariants"]]
    serial, parallel = report(), report("-n", "2")
    assert parallel == serial
    assert ("bcc-not-disclosed", "failed", True) in serial[2]
    assert {outcome for _, outcome, _ in serial[2]} == {"passed", "failed"}


@pytest.mark.parametrize(("option", "env", "chosen"), [
    ((), {}, "beside-the-toml"), (("--db=from-option",), {"MAILCONFORM_DB": "from-env"}, "from-option"),
    ((), {"MAILCONFORM_DB": "from-env"}, "from-env")])
def test_database_from_option_environment_or_toml(tmp_path: Path, option: tuple[str, ...],
                                                  env: dict[str, str], chosen: str) -> None:
    """--db wins over MAILCONFORM_DB, which wins over the --sut-config's `db` (relative to the TOML)."""
    config = tmp_path / "configs" / "store.toml"
    config.parent.mkdir()
    config.write_text('name = "store"\ninject = "smtp://127.0.0.1:2525"\ndomains = ["isp.test"]\n'
                      'mailbox = "maildir:/srv/{local}"\ndb = "beside-the-toml"\n')
    (tmp_path / "show_db.py").write_text(
        "from mailconform.plugin import conformance_settings\n\n"
        "def pytest_collection_finish(session):\n"
        "    print('DATABASE', conformance_settings(session.config).database)\n")
    result = pytest_in(tmp_path, "--co", "-q", "-p", "show_db", f"--sut-config={config}", *option,
                       PYTHONPATH=f"{ROOT}{os.pathsep}{tmp_path}", **env)
    line = next(x for x in result.stdout.splitlines() if x.startswith("DATABASE"))
    where = {"beside-the-toml": config.parent / chosen}.get(chosen, Path(chosen))
    assert line == f"DATABASE DirectoryBasedExampleDatabase({where!r})"


def test_space_separated_existing_paths_read_as_options(tmp_path: Path) -> None:
    """`--report-json /abs/existing.json` (two tokens, the file existing) is an option, not a test
    path, run after run: pytest keeps the checkout's configuration and writes the report."""
    report = tmp_path / "existing.json"
    report.write_text("{}")
    for attempt in (1, 2):
        result = pytest_in(ROOT, "--sut", "reference", "-k", "bcc", "--report-json", str(report),
                           "--db", str(tmp_path / "db"))
        assert result.returncode == 0, f"run {attempt}: {result.stdout[-2000:]}{result.stderr[-1000:]}"
        assert f"rootdir: {ROOT}" in result.stdout and "configfile: pyproject.toml" in result.stdout
        outcomes = {e["id"]: e["outcome"] for e in json.loads(report.read_text())["invariants"]}
        assert outcomes["bcc-not-disclosed"] == "passed"
