"""Any server can be judged through a --sut-config file alone."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "tests" / "servers" / "store.py"
"""A small independent Maildir store; with no flags it files each message before its 250."""
def run_suite(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/conformance", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture
def plain_store(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """An independent SMTP store in its own process, filing into its own Maildir root."""
    port, root = free_port(), tmp_path / "mail"
    process = subprocess.Popen([sys.executable, str(STORE), "--port", str(port), "--root", str(root)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout and process.stdout.readline().strip() == "ready"
        yield port, root
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_independent_server_passes_through_its_config_file(plain_store: tuple[int, Path],
                                                           tmp_path: Path) -> None:
    """A minimal Maildir store described by name, inject, domains and mailbox passes the suite."""
    port, root = plain_store
    config = tmp_path / "tiny.toml"
    config.write_text(f'name = "tiny-mx"\ninject = "smtp://127.0.0.1:{port}"\n'
                      f'domains = ["isp.test"]\nmailbox = "maildir:{root}/{{local}}/Maildir"\n')
    report = tmp_path / "report.json"
    result = run_suite("--sut-config", str(config), "--report-json", str(report))
    assert result.returncode == 0, result.stdout[-3000:]
    data = json.loads(report.read_text())
    assert (data["sut"], data["transport"]) == ("tiny-mx", "smtp")
    outcomes = {i["id"]: i["outcome"] for i in data["invariants"]}
    assert set(outcomes.values()) == {"passed"}  # an mx-only store too is handed blind recipients


def test_fixed_mailbox_pool_is_emptied_between_examples(plain_store: tuple[int, Path],
                                                       tmp_path: Path) -> None:
    """With a fixed pool of mailboxes the suite clears them, so examples never see old mail."""
    port, root = plain_store
    config = tmp_path / "pool.toml"
    config.write_text(f'name = "tiny-pool"\ninject = "smtp://127.0.0.1:{port}"\n'
                      f'domains = ["isp.test"]\nmailbox = "maildir:{root}/{{local}}/Maildir"\n'
                      'mailboxes = ["alice", "bob", "carol"]\n[timeouts]\nsettle = 0.1\n')
    result = run_suite("--sut-config", str(config), "-k", "copy_per_path or phantom")
    assert result.returncode == 0, result.stdout[-3000:]
    assert {p.name for p in root.iterdir()} <= {"alice", "bob", "carol"}


def test_unreachable_server_stops_the_run_with_one_message(tmp_path: Path) -> None:
    """Nothing listening: the run stops before any example with one clear message."""
    config = tmp_path / "down.toml"
    config.write_text(f'name = "down"\ninject = "smtp://127.0.0.1:{free_port()}"\n'
                      'domains = ["isp.test"]\nmailbox = "maildir:/nonexistent/{local}"\n')
    result = run_suite("--sut-config", str(config))
    assert result.returncode == 6  # the SUT could not be driven: not a usage error
    assert "mailconform: down is not ready" in result.stdout + result.stderr
    assert "passed" not in result.stdout


@pytest.mark.parametrize(("toml", "complaint"), [
    ('name = "x"\n', "missing required keys ['domains', 'inject', 'mailbox']"),
    ('name = "x"\ninject = "http://127.0.0.1:25"\ndomains = ["isp.test"]\nmailbox = "maildir:/m/{local}"\n',
     "expected smtp://HOST:PORT"),
    ('name = "x"\ninject = "smtp://127.0.0.1:25"\ndomains = ["isp.test"]\nmailbox = "maildir:/m/{local}"\n'
     'colour = "blue"\n', "unknown keys ['colour']"),
    ('name = "x"\ninject = "smtp://127.0.0.1:25"\ndomains = ["isp.test"]\nmailbox = "imap://{local}@h"\n'
     'password_env = "MAILCONFORM_NO_SUCH_VARIABLE"\n', "$MAILCONFORM_NO_SUCH_VARIABLE is not set"),
    ('name = "x\n', "Illegal character"),
])
def test_bad_config_is_named_with_the_file(tmp_path: Path, toml: str, complaint: str) -> None:
    """A mistaken config file stops the run with the file's name and what is wrong."""
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    result = run_suite("--sut-config", str(config))
    assert result.returncode == 4
    output = result.stdout + result.stderr
    assert str(config) in output and complaint in output, output[-1500:]
