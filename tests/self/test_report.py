"""The pytest face: outcomes with evidence, errors that fail the gate, budgets, reports that survive."""

import json
import mailbox
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailconform.plugin import EXIT_SUT_ERROR
from mailconform.reporting import _judged
from mailconform.run import Judge
from mailconform.specs.explain import InvariantViolation
from mailconform.specs.model import Plan
from mailconform.specs.observation import Observation
from mailconform.specs.scenario import Scenario, SendAgain
from mailconform.strategies import SEED_STORY
from mailconform.suts.base import Player
from mailconform.suts.inprocess import InProcessSUT
from mailconform.suts.wire import EmbeddedServer, Reply
from tests.self.test_sut_config import STORE
from tests.servers.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def run_suite(*args: str, profile: str = "default") -> subprocess.CompletedProcess[str]:
    # An empty example database of its own: the checkout's may replay a developer's counterexamples.
    with tempfile.TemporaryDirectory() as database:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/conformance",
                               f"--db={database}", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "MAILCONFORM_PROFILE": profile})


def entries(report_path: Path) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for i in json.loads(report_path.read_text())["invariants"]}


def test_dedup_message_id_report_has_the_seed_sized_story(tmp_path: Path) -> None:
    """model:dedup-message-id fails copy-per-path with one message reaching one mailbox twice."""
    report_path = tmp_path / "report.json"
    result = run_suite("--sut", "model:dedup-message-id", "--report-json", str(report_path))
    assert result.returncode == 1, result.stdout[-2000:]
    report = json.loads(report_path.read_text())
    assert report["sut"] == "model:dedup-message-id" and report["complete"]
    found = entries(report_path)
    failed = found.pop("copy-per-path")
    assert failed["outcome"] == "failed"
    # The others were judged on evidence, or say they had none.
    assert {e["outcome"] for e in found.values()} <= {"passed", "not-exercised"}
    assert all(e["examples"] >= 40 and e["exercised"] <= e["examples"] for e in found.values())
    example = failed["counterexample"]
    assert (example["messages"], example["transactions"]) == (1, 2)
    assert failed["examples"] == failed["exercised"] == 1  # the seed story, tried first, fails
    assert "RFC 5321 §6.1" in failed["rfc"]
    assert "expected 2 copies" in example["text"] and "observed 1" in example["text"]
    assert example["scenario"]["events"][0]["kind"] == "submit"


def test_unknown_sut_stops_with_one_clear_message() -> None:
    """A misspelt SUT name stops the run before any example, naming the choices."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/conformance", "--sut",
                             "no-such-sut"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 4
    assert "unknown SUT 'no-such-sut'" in result.stdout + result.stderr


def test_every_invariant_judges_one_shared_play(tmp_path: Path) -> None:
    """Seven properties, one play per scenario: all but the first judge plays already made."""
    result = run_suite("--sut", "reference")
    assert result.returncode == 0, result.stdout[-2000:]
    line = next(x for x in result.stdout.splitlines() if " plays judged " in x)
    plays, examples = int(line.split()[1]), int(line.split()[4])
    assert examples >= 7 * 40 and plays <= examples / 6, line


def test_bcc_is_exercised_on_an_mx_only_sut(tmp_path: Path) -> None:
    """An LMTP store is handed blind recipients next to others in one transaction (the suite's
    upstream relay carries them so): the Bcc outcome counts those examples; unselected ones say so."""
    report_path = tmp_path / "report.json"
    result = run_suite("--sut", "embedded-lmtp", "--report-json", str(report_path),
                       "-k", "bcc or copy_per_path")
    assert result.returncode == 0, result.stdout[-2000:]
    found = entries(report_path)
    bcc = found["bcc-not-disclosed"]
    # How many examples carried a blind recipient depends on the draw: the outcome is honest either way.
    assert bcc["exercised"] < bcc["examples"] and bcc["outcome"] == (
        "passed" if bcc["exercised"] else "not-exercised")
    if not bcc["exercised"]:
        assert "had to hide a Bcc" in bcc["reason"]
    assert found["copy-per-path"]["outcome"] == "passed" and found["copy-per-path"]["exercised"] > 0
    assert found["trace-prepend-only"] == {**found["trace-prepend-only"], "outcome": "not-exercised",
                                           "reason": "not run: not selected in this session"}


def test_invariants_a_stopped_session_never_reached_say_so(tmp_path: Path) -> None:
    """With -x the session stops at the first failure: the invariants after it were selected but
    not run, and the report says the session stopped, not that they were left out."""
    report_path = tmp_path / "report.json"
    result = run_suite("--sut", "embedded:dedup-cyrus", "--report-json", str(report_path), "-x")
    assert result.returncode == 1, result.stdout[-2000:]
    found = entries(report_path)
    assert found["copy-per-path"]["outcome"] == "failed"
    unreached = [e for e in found.values() if e["outcome"] == "not-exercised"]
    assert unreached and all(e["reason"] == "not run: the session stopped early (stopping after 1 failures)"
                             for e in unreached)


@pytest.fixture
def plain_store(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """An independent SMTP store in its own process, and a --sut-config describing it."""
    port, root = free_port(), tmp_path / "mail"
    process = subprocess.Popen([sys.executable, str(STORE), "--port", str(port), "--root", str(root)],
                               stdout=subprocess.PIPE, text=True)
    config = tmp_path / "tiny.toml"
    config.write_text(f'name = "tiny-mx"\ninject = "smtp://127.0.0.1:{port}"\n'
                      f'domains = ["isp.test"]\nmailbox = "maildir:{root}/{{local}}/Maildir"\n'
                      '[timeouts]\nconnect = 2\nreply = 5\n')
    try:
        assert process.stdout and process.stdout.readline().strip() == "ready"
        yield process, config
    finally:
        process.kill()
        process.wait(timeout=10)


def test_a_server_that_dies_is_an_error_not_the_expected_failure(
        plain_store: tuple[subprocess.Popen[str], Path], tmp_path: Path) -> None:
    """With copy-per-path expected to fail, a crash mid-run fails the gate with its own exit status
    and one line naming the SUT, not a traceback per test."""
    server, config = plain_store
    expectations = tmp_path / "expected.toml"
    expectations.write_text('[copy-per-path]\noutcome = "failed"\nreason = "it loses mail"\n')
    report_path = tmp_path / "report.json"
    suite = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "tests/conformance", "--sut-config", str(config),
         "--expectations", str(expectations), "--report-json", str(report_path), "-k", "copy_per_path"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "MAILCONFORM_PROFILE": "thorough"})
    mail = Path(config.read_text().split("maildir:")[1].split("/{local}")[0])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(mail.glob("*"))) < 20:
        time.sleep(0.05)
    server.kill()  # mid-run: examples have been judged, more are coming
    output, _ = suite.communicate(timeout=300)
    assert suite.returncode == EXIT_SUT_ERROR, output[-3000:]
    copy_per_path = entries(report_path)["copy-per-path"]
    assert copy_per_path["outcome"] == "error" and copy_per_path["examples"] > 0
    assert "tiny-mx could not be driven" in copy_per_path["reason"]
    assert "xfail" not in output.lower() and "Traceback" not in output
    # the failure, the table, the closing line and pytest's short summary
    assert output.count("tiny-mx could not be driven") <= 4, output


def test_budget_ends_the_run_cleanly_and_honestly(tmp_path: Path) -> None:
    """A --budget stops a long run: every invariant keeps the evidence the search gathered and
    says it was cut short; none passes on it."""
    report_path = tmp_path / "report.json"
    started = time.monotonic()
    result = run_suite("--sut", "reference", "--budget", "2", "--report-json", str(report_path),
                       "--progress-every", "0.5", profile="thorough")
    assert time.monotonic() - started < 120
    assert result.returncode == 0, result.stdout[-2000:]
    found = list(entries(report_path).values())
    assert len(found) == 7 and all("--budget was spent after" in e["reason"] for e in found)
    assert len({e["examples"] for e in found}) == 1 and 0 < found[0]["examples"] < 1000
    assert all(e["outcome"] in ("passed", "not-exercised") for e in found)
    assert "7 skipped" in result.stdout  # a partial search passes no gate
    # Progress reached the terminal through pytest's output capture.
    assert " scenarios judged for 7 invariants in " in result.stdout


def test_a_killed_run_leaves_every_finished_outcome(tmp_path: Path) -> None:
    """The JSON report is rewritten after each invariant: killing the run loses only the unfinished."""
    report_path = tmp_path / "report.json"
    suite = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.servers.pauses", "tests/conformance",
         "--sut", "reference", "--report-json", str(report_path)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        finished: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not finished:
            time.sleep(0.1)
            if report_path.exists():
                finished = [e for e in entries(report_path).values() if e["examples"]]
        suite.kill()
        suite.wait(timeout=30)
    finally:
        suite.kill()
    report = json.loads(report_path.read_text())
    assert not report["complete"]
    assert finished and finished[0]["outcome"] == "passed" and finished[0]["examples"] >= 40
    unfinished = [e for e in report["invariants"] if not e["examples"]]
    assert unfinished and all(e["reason"] == "not judged: the run ended before it" for e in unfinished)


def test_a_copy_filed_late_is_late_delivery_not_loss(tmp_path: Path) -> None:
    """A store that files seconds after its 250 loses nothing: copy-per-path reads `late`, with
    the delay, because every missing copy is read again after the full quiescence bound."""
    port, root = free_port(), tmp_path / "mail"
    server = subprocess.Popen([sys.executable, str(STORE), "--port", str(port), "--root", str(root),
                               "--queue", "0.6", "0.6"], stdout=subprocess.PIPE, text=True)
    config = tmp_path / "late.toml"
    config.write_text(f'name = "late-mx"\ninject = "smtp://127.0.0.1:{port}"\ndomains = ["isp.test"]\n'
                      f'mailbox = "maildir:{root}/{{local}}/Maildir"\n'
                      # Wrongly said to file before it answers: no barrier waits for the copies.
                      'delivery = "synchronous"\n'
                      '[timeouts]\nquiescence = 3\nsettle = 0.2\n')
    report_path = tmp_path / "report.json"
    try:
        assert server.stdout and server.stdout.readline().strip() == "ready"
        result = run_suite("--sut-config", str(config), "--report-json", str(report_path),
                           "-k", "copy_per_path", "--budget", "8")
    finally:
        server.kill()
        server.wait(timeout=10)
    assert result.returncode == 0, result.stdout[-3000:]
    copy_per_path = entries(report_path)["copy-per-path"]
    assert copy_per_path["outcome"] == "late", copy_per_path
    assert "late delivery, not loss" in copy_per_path["reason"] and copy_per_path["counterexample"] is None


class RefusesU2AndU3:
    """A store that refuses (5.7.1, a policy refusal, not a missing mailbox) two of three users."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)

    def rcpt(self, address: str) -> Reply:
        if "_u2@" in address or "_u3@" in address:
            return Reply(550, "5.7.1 not accepting mail for this user")
        return Reply(250, "2.1.5 ok")

    def deliver(self, mail_from: str, rcpts: list[str], data: bytes) -> list[Reply]:
        for rcpt in rcpts:
            trace = f"Return-Path: <{mail_from}>\r\n".encode()
            mailbox.Maildir(self.root / rcpt.lower(), create=True).add(trace + data)
        return [Reply(250, "2.0.0 filed") for _ in rcpts]


def test_refusals_that_thin_the_evidence_are_said_in_one_line(tmp_path: Path) -> None:
    """When the SUT's refusals leave a passed invariant exercised in fewer than --min-evidence of its
    examples, one line says so, with the refusals; a SUT that refuses nothing gets no such line."""
    with EmbeddedServer(RefusesU2AndU3(tmp_path / "mail")) as server:
        config = tmp_path / "picky.toml"
        config.write_text(f'name = "picky"\ninject = "{server.url}"\ndomains = ["isp.test"]\n'
                          f'mailbox = "maildir:{tmp_path}/mail/{{address}}"\n[timeouts]\nsettle = 0.05\n')
        result = run_suite("--sut-config", str(config), "--min-evidence", "0.99", "-k", "phantom or resent")
    assert result.returncode == 0, result.stdout[-3000:]
    thin = [line for line in result.stdout.splitlines() if "was exercised in only" in line]
    assert thin and all("the SUT refused" in line and "recipients offered" in line for line in thin), thin
    assert any("resent-keeps-message-id" in line for line in thin)
    unrefused = run_suite("--sut", "reference", "--min-evidence", "0.99", "-k", "resent")
    assert "was exercised in only" not in unrefused.stdout


class _CountingRechecks(InProcessSUT):
    """model:dedup-message-id, counting how often a play is read again after the quiescence bound."""

    def __init__(self) -> None:
        super().__init__("dedup-message-id")
        self.rechecks = 0

    def recheck(self, plan: Plan) -> Observation:
        self.rechecks += 1
        return super().recheck(plan)


def test_a_story_confirmed_lost_is_read_again_once_a_shrunk_one_again() -> None:
    """The first missing copy is read again after the quiescence bound; the report reads the
    failing story again only if it is another story than the one already confirmed lost."""
    sut = _CountingRechecks()
    judge = Judge(Player(sut, capacity=10))
    caught: list[InvariantViolation] = []

    @settings(max_examples=1, database=None)
    @given(scenario=st.just(SEED_STORY))
    def judged(scenario: Scenario) -> None:
        with pytest.raises(InvariantViolation) as failed:
            judge(scenario, "copy-per-path")
        caught.append(failed.value)
    judged()
    assert sut.rechecks == 1 and judge.tallies["copy-per-path"].lost == SEED_STORY
    assert _judged(judge, "copy-per-path", caught[0]).outcome == "failed"
    assert sut.rechecks == 1  # the same story: not read again
    judge.tallies["copy-per-path"].last_failing = Scenario(SEED_STORY.world,
                                                           (*SEED_STORY.events, SendAgain("m1")))
    assert _judged(judge, "copy-per-path", caught[0]).outcome == "failed"
    assert sut.rechecks == 2  # a shrunk story of its own: read again after the bound
