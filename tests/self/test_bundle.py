"""A bug-report bundle holds the whole failure, names no local path, and replays on another server."""

import json
import os
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mailconform import bundle
from mailconform.replay import main as replay
from mailconform.specs.explain import InvariantViolation
from mailconform.specs.invariants import BY_ID
from mailconform.strategies import SEED_STORY
from mailconform.suts.base import execute
from mailconform.suts.diagnose import diagnose, impact
from mailconform.suts.registry import resolve

ROOT = Path(__file__).resolve().parents[2]


def seed_violation(sut_name: str) -> tuple[InvariantViolation, object]:
    sut = resolve(sut_name)
    try:
        run = execute(sut, SEED_STORY)
        invariant = BY_ID["copy-per-path"]
        violation = InvariantViolation(invariant, run.plan, run.observation,
                                       invariant.check(run.plan, run.observation), sut.name)
        found = diagnose(sut, run.plan, run.observation, gaps=(0.2,))
        rows = impact(sut)
        root = getattr(sut, "_root", None)
    finally:
        sut.close()
    return violation, (found, rows, root)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, InvariantViolation, str]:
    violation, (found, rows, root) = seed_violation("embedded:dedup-message-id")
    folder = bundle.write(tmp_path_factory.mktemp("bundles"), violation, found, rows)  # type: ignore[arg-type]
    return folder, violation, str(root)


def test_bundle_holds_the_whole_failure(made: tuple[Path, InvariantViolation, str]) -> None:
    """Story with addresses, timed transcript, sent bytes and envelopes, filed copies, a ticket."""
    folder, violation, _ = made
    assert folder.parts[-2:] == ("embedded_dedup-message-id", "copy-per-path")
    plan = violation.plan
    story = (folder / "story.txt").read_text()
    assert plan.naming.address("u1") in story and "list L1: u1" in story
    transcript = (folder / "transcript.txt").read_text()
    assert "C: MAIL FROM:<l1-bounces@lists.test>" in transcript
    assert "S: 250 2.0.0 filed" in transcript and "== t2  list L1 -> SUT mx" in transcript
    envelopes = json.loads((folder / "sent" / "envelope.json").read_text())
    assert [e["transaction"] for e in envelopes] == ["t1", "t2"]
    for tx, envelope in zip(plan.injections, envelopes, strict=True):
        assert (folder / envelope["file"]).read_bytes() == tx.data
        assert (envelope["mail_from"], envelope["rcpts"]) == (tx.mail_from, list(tx.rcpts))
    mailbox = plan.naming.address("u1")
    filed = sorted((folder / "observed" / bundle.folder_name(mailbox)).iterdir())
    assert [f.name for f in filed] == ["01-t1.eml"]
    report = (folder / "REPORT.md").read_text()
    for needed in ("## What was sent", "## What was filed", "## What was owed, and why",
                   "RFC 5321 §6.1", "## The rule the server applies", "same Message-ID",
                   "## Where else it loses mail", "| post to a list and Bcc to self | 2 | 1 | LOSES 1 |",
                   "## How to replay", "mailconform replay"):
        assert needed in report, needed


def test_bundle_names_no_path_of_the_machine(made: tuple[Path, InvariantViolation, str]) -> None:
    """No file in the bundle names the SUT's storage, the working directory or the bundle's place."""
    folder, _, store = made
    for path in folder.rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", "replace")
            for local in (store, str(ROOT), os.getcwd(), str(folder.parent.parent)):
                assert local not in text, (path, local)


@contextmanager
def served(name: str) -> Iterator[dict[str, str]]:
    """`mailconform serve NAME` in a process of its own; yields its --sut-config."""
    server = subprocess.Popen([sys.executable, "-m", "mailconform.suts.serve", name], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout
        lines = [server.stdout.readline()]
        while lines[-1].strip() and not lines[-1].startswith("expands_aliases"):
            lines.append(server.stdout.readline())
        config = tomllib.loads("".join(lines))
        yield config
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=10) == 0


def test_replay_reproduces_on_another_server_with_the_rule(made: tuple[Path, InvariantViolation, str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A bundle from embedded SMTP reproduces against a separately served LMTP store with the same rule."""
    folder, _, _ = made
    with served("embedded-lmtp:dedup-message-id") as config:
        assert config["inject"].startswith("lmtp://127.0.0.1:")
        code = replay([str(folder), "--inject", config["inject"], "--mailbox", config["mailbox"]])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "REPRODUCED" in out and "fresh Message-IDs" in out


def test_replay_does_not_reproduce_on_a_conforming_server(made: tuple[Path, InvariantViolation, str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The same bundle against the conforming embedded server: both copies filed, exit 1."""
    folder, _, _ = made
    with served("embedded") as config:
        code = replay([str(folder), "--inject", config["inject"], "--mailbox", config["mailbox"]])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "NOT REPRODUCED" in out and "2 copies filed (t1, t2)" in out


def test_replay_of_something_else_is_a_one_line_error(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A folder that is no bundle, or a server that is not there, ends with exit 2 and one line."""
    assert replay([str(tmp_path), "--inject", "smtp://127.0.0.1:9", "--mailbox", "maildir:/x/{local}"]) == 2
    assert "not a mailconform bundle" in capsys.readouterr().err


def test_replay_of_an_unreachable_server_is_an_error(made: tuple[Path, InvariantViolation, str],
                                                     tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing listening at --inject: exit 2, naming the URL."""
    folder, _, _ = made
    code = replay([str(folder), "--inject", "smtp://127.0.0.1:9",
                   "--mailbox", f"maildir:{tmp_path}/{{address}}/Maildir"])
    assert code == 2
    assert "127.0.0.1:9" in capsys.readouterr().err
