"""The pytest face: a failing SUT yields a shrunk counterexample in the JSON report."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_suite(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_dedup_message_id_report_has_the_seed_sized_story(tmp_path: Path) -> None:
    """model:dedup-message-id fails copy-per-path with one message reaching one mailbox twice."""
    report_path = tmp_path / "report.json"
    result = run_suite("tests/conformance", "--sut", "model:dedup-message-id",
                       "--report-json", str(report_path))
    assert result.returncode == 1, result.stdout[-2000:]
    report = json.loads(report_path.read_text())
    assert report["sut"] == "model:dedup-message-id"
    outcomes = {i["id"]: i["outcome"] for i in report["invariants"]}
    assert outcomes.pop("copy-per-path") == "failed"
    assert set(outcomes.values()) == {"passed"}
    (failed,) = [i for i in report["invariants"] if i["counterexample"]]
    example = failed["counterexample"]
    assert (example["messages"], example["transactions"]) == (1, 2)
    assert "RFC 5321 §6.1" in failed["rfc"]
    assert "expected 2 copies" in example["text"] and "observed 1" in example["text"]
    assert example["scenario"]["events"][0]["kind"] == "submit"


def test_unknown_sut_stops_with_one_clear_message() -> None:
    """A misspelt SUT name stops the run before any example, naming the choices."""
    result = run_suite("tests/conformance", "--sut", "no-such-sut")
    assert result.returncode == 4
    assert "unknown SUT 'no-such-sut'" in result.stdout + result.stderr
