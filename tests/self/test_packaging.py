"""Installed from the checkout, mailconform works from any project's CI (loopback only, no index).

The checkout is built and installed into a fresh virtual environment that sees this
interpreter's packages (so nothing is downloaded; pytest and its script come from there too),
then used from a user project with
its own pytest configuration, conftest.py, tests/ package, strategies.py and specs.py.
"""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.self.test_sut_config import STORE
from tests.servers.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
NOT_SOURCE = shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".hypothesis",
                                    ".mypy_cache", ".ruff_cache", ".tox", "reports")


def run(*args: str | Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("CI", "MAILCONFORM_PROFILE", "MAILCONFORM_DB", "PYTHONPATH", "PYTEST_ADDOPTS")}
    return subprocess.run([str(a) for a in args], cwd=cwd, env={**environ, **env}, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the checkout built and installed into it."""
    base = tmp_path_factory.mktemp("packaging")
    source = base / "checkout"
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_SOURCE)  # the build writes into its source
    venv = base / "venv"
    made = run(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv, cwd=base)
    assert made.returncode == 0, made.stderr
    installed = run(venv / "bin" / "python", "-m", "pip", "install", "--no-index", "--no-build-isolation",
                    "--quiet", source, cwd=base)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    checked = run(venv / "bin" / "python", "-m", "pip", "check", cwd=base)
    assert checked.returncode == 0, checked.stdout
    return venv


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    """A project with every name that could collide with mailconform's: its own pytest settings,
    conftest.py, tests/ package, strategies.py and specs.py."""
    project = tmp_path / "user-project"
    (project / "tests").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[project]\nname = "user-mail-server"\nversion = "1"\n\n'
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\naddopts = "-x --strict-markers -p no:xdist"\n')
    (project / "conftest.py").write_text(
        "from pathlib import Path\n\n"
        "def pytest_configure(config):\n"
        "    (Path(__file__).parent / 'conftest-was-loaded').touch()\n")
    (project / "strategies.py").write_text("WHOSE = 'the user project'\n")
    (project / "specs.py").write_text("WHOSE = 'the user project'\n")
    (project / "tests" / "__init__.py").write_text("")
    (project / "tests" / "test_own.py").write_text(
        "import specs, strategies\n"
        "from hypothesis import given, settings, strategies as st\n\n"
        "def test_own_modules_are_found():\n"
        "    assert specs.WHOSE == strategies.WHOSE == 'the user project'\n\n"
        "@given(st.integers())\n"
        "def test_own_hypothesis_settings(n):\n"
        "    assert settings.default.max_examples == 100\n")
    return project


@pytest.fixture
def store(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """tests/servers/store.py in its own process, and the TOML describing it (absolute path)."""
    port, root = free_port(), tmp_path / "mail"
    dedup = getattr(request, "param", False)
    process = subprocess.Popen([sys.executable, str(STORE), "--port", str(port), "--root", str(root),
                                *(["--dedup"] if dedup else [])], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout and process.stdout.readline().strip() == "ready"
        config = tmp_path / "configs" / "tiny.toml"
        config.parent.mkdir()
        config.write_text(f'name = "tiny-mx"\ninject = "smtp://127.0.0.1:{port}"\n'
                          f'domains = ["isp.test"]\nmailbox = "maildir:{root}/{{local}}/Maildir"\n')
        yield config
    finally:
        process.terminate()
        process.wait(timeout=10)


EXERCISED_BY_ANY_COPY = ("copy-per-path", "no-phantom-copies", "message-id-preserved",
                         "trace-prepend-only", "return-path-is-last-envelope-sender")


def outcomes(report: Path) -> dict[str, str]:
    data = json.loads(report.read_text())
    assert data["sut"] == "tiny-mx"
    return {entry["id"]: entry["outcome"] for entry in data["invariants"]}


def test_installed_command_runs_the_suite_from_a_user_project(venv: Path, user_project: Path,
                                                              store: Path, tmp_path: Path) -> None:
    """From a project with its own pytest settings and colliding module names, `mailconform run`
    with space-separated absolute paths passes a conforming store twice (the report file existing
    the second time), and the project's own tests still run as before."""
    report = tmp_path / "reports" / "r.json"
    report.parent.mkdir()
    for attempt in (1, 2):
        result = run(venv / "bin" / "mailconform", "run", "--sut-config", store, "--report-json", report,
                     cwd=user_project)
        assert result.returncode == 0, f"run {attempt}:\n{result.stdout[-3000:]}{result.stderr[-2000:]}"
        assert "mailconform: report written to" in result.stdout
        found = outcomes(report)
        # Every example with a copy exercises these; a resend (or a blind recipient, which the
        # suite's upstream relay carries even to an mx-only store) depends on the draw.
        assert all(found[i] == "passed" for i in EXERCISED_BY_ANY_COPY), found
        assert set(found.values()) <= {"passed", "not-exercised"}, found
    assert not (user_project / "conftest-was-loaded").exists()
    own = run(venv / "bin" / "python", "-m", "pytest", "-q", cwd=user_project)
    assert own.returncode == 0 and "2 passed" in own.stdout, own.stdout[-2000:]
    assert (user_project / "conftest-was-loaded").exists()


@pytest.mark.parametrize("store", [True], indirect=True, ids=["dedup"])
def test_installed_command_catches_a_deduplicating_store(venv: Path, user_project: Path, store: Path,
                                                         tmp_path: Path) -> None:
    """A store that drops a copy whose Message-ID it holds fails copy-per-path, with status 1
    (the caller's PYTEST_ADDOPTS is not the suite's)."""
    report = tmp_path / "r.json"
    result = run(venv / "bin" / "mailconform", "run", "--sut-config", store, "--report-json", report,
                 "--", "-k", "copy_per_path", cwd=user_project, PYTEST_ADDOPTS="--an-option-of-the-callers")
    assert result.returncode == 1, result.stdout[-3000:]
    assert outcomes(report)["copy-per-path"] == "failed"
    assert "copy-per-path violated by tiny-mx" in result.stdout


def test_parallel_installed_run_reports_what_a_serial_run_does(venv: Path, user_project: Path,
                                                               tmp_path: Path) -> None:
    """`mailconform run -- -n 2` writes the same outcomes as the same run without xdist."""
    reports = [tmp_path / "serial.json", tmp_path / "parallel.json"]
    for report, extra in zip(reports, ([], ["-n", "2"]), strict=True):
        result = run(venv / "bin" / "mailconform", "run", "--sut", "model:strip-resent", "--report-json",
                     report, "--", "-k", "resent or bcc or trace", *extra, cwd=user_project)
        assert result.returncode == 1, result.stdout[-3000:]
    serial, parallel = (json.loads(r.read_text())["invariants"] for r in reports)
    assert [(e["id"], e["outcome"]) for e in serial] == [(e["id"], e["outcome"]) for e in parallel], \
        [(e["id"], e["outcome"], e.get("reason")) for e in serial + parallel]
    judged = {e["id"]: e["outcome"] for e in serial}
    assert judged["resent-keeps-message-id"] == "failed"
    assert judged["bcc-not-disclosed"] == judged["trace-prepend-only"] == "passed"


def test_installed_plugin_takes_space_separated_existing_paths_in_the_checkout(venv: Path, store: Path,
                                                                               tmp_path: Path) -> None:
    """In the checkout, `pytest --sut-config /abs/existing.toml --report-json /abs/existing.json`
    reads both as options, twice: the second time the report file exists."""
    checkout = venv.parent / "checkout"
    report = tmp_path / "existing.json"
    report.write_text("{}")
    for attempt in (1, 2):
        result = run(venv / "bin" / "python", "-m", "pytest", "--sut-config", store, "--report-json", report,
                     "-k", "copy_per_path or bcc", cwd=checkout)
        assert result.returncode == 0, f"run {attempt}:\n{result.stdout[-3000:]}{result.stderr[-2000:]}"
        assert f"rootdir: {checkout}" in result.stdout
        assert outcomes(report)["copy-per-path"] == "passed"
