"""A search split across xdist workers: each plays its share, and the shares merge into what one
serial search finds: the same outcomes, evidence and minimal stories, or an error, never a pass."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, seed, settings

from mailconform import reporting, run, shares
from mailconform.plugin import EXIT_SUT_ERROR
from mailconform.run import Evidence, Judge, OutOfTime, Share, merged
from mailconform.shares import Published, ShareMissing, announce, gather, publish
from mailconform.specs.explain import InvariantViolation
from mailconform.specs.invariants import BY_ID
from mailconform.specs.scenario import Scenario
from mailconform.strategies import scenarios
from mailconform.suts.base import Player
from mailconform.suts.inprocess import InProcessSUT
from tests.self.test_cli_plugin import ROOT, pytest_in

PROFILE = settings(max_examples=60, database=None, deadline=None)


def split_search(policy: str, of: int, seed: int) -> list[Judge]:
    """``of`` judges, each searching its share, each having adopted every share."""
    judges = [Judge(Player(InProcessSUT(policy))) for _ in range(of)]
    for index, judge in enumerate(judges):
        judge.search(list(BY_ID), PROFILE, seed, Share(index, of))
    for judge in judges:
        judge.adopt([j.evidence for j in judges])
    return judges


def test_every_share_draws_the_scenarios_a_serial_search_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generation does not depend on which examples a share plays: every share draws the serial
    sequence, and the shares together play each example once."""
    def drawn_by(share: Share | None) -> tuple[list[str], int]:
        stories: list[str] = []
        monkeypatch.setattr(run, "scenarios",
                            lambda: scenarios().map(lambda s: stories.append(s.story()) or s))
        judge = Judge(Player(InProcessSUT()))
        judge.search(list(BY_ID), PROFILE, 11, share)
        return stories, judge.player.plays
    serial, serial_plays = drawn_by(None)
    first, first_plays = drawn_by(Share(0, 2))
    second, second_plays = drawn_by(Share(1, 2))
    assert len(serial) == 60 and first == serial and second == serial
    assert first_plays + second_plays == serial_plays == 61  # the seed story, then 60 drawn


@pytest.mark.parametrize("policy", ["reference", "strip-resent", "leak-bcc"])
def test_shares_merge_into_the_serial_tallies(policy: str) -> None:
    """Every adopting judge counts, per invariant, the examples and exercised examples a serial
    search counts, up to the first example any share broke it with."""
    serial = Judge(Player(InProcessSUT(policy)))
    serial.search(list(BY_ID), PROFILE, 7)
    broken = {i for i, t in serial.tallies.items() if t.first_violation is not None}
    assert (policy == "reference") == (not broken)
    for judge in split_search(policy, 2, 7):
        for invariant_id, tally in serial.tallies.items():
            mine = judge.tallies[invariant_id]
            assert (mine.examples, mine.exercised) == (tally.examples, tally.exercised), invariant_id
            assert (mine.first_violation or mine.broken_elsewhere) is not None if invariant_id in broken \
                else mine.first_violation is None and mine.broken_elsewhere is None


def test_a_property_on_any_worker_shrinks_to_the_serial_minimal_story() -> None:
    """After adopting the shares, either worker's property fails on the first scenario any share
    broke it with, whatever share that was, and shrinks to the story a serial run shrinks to."""
    def minimal(judge: Judge) -> str:
        @seed(7)
        @settings(PROFILE)
        @given(scenario=scenarios())
        def resent_keeps_message_id(scenario: Scenario) -> None:  # as its conformance property
            judge(scenario, "resent-keeps-message-id")
        with pytest.raises(InvariantViolation):
            resent_keeps_message_id()
        failing = judge.tallies["resent-keeps-message-id"].last_failing
        assert failing is not None
        return failing.story()
    serial = Judge(Player(InProcessSUT("strip-resent")))
    serial.search(list(BY_ID), PROFILE, 7)
    judges = split_search("strip-resent", 2, 7)
    assert sum(j.tallies["resent-keeps-message-id"].broken_elsewhere is not None for j in judges) == 1
    assert {minimal(j) for j in judges} == {minimal(serial)}


def test_merged_evidence_counts_up_to_the_first_break_of_any_share() -> None:
    """A later share's break, and what it counted past the first, do not count."""
    first = Evidence(judged=[0, 2, 4], exercised=[2, 4], late=[(2, 1.5)], broken_at=4,
                     counterexample={"a": 1})
    second = Evidence(judged=[1, 3, 5, 7], exercised=[1, 5, 7], late=[(5, 2.0)], broken_at=7,
                      counterexample={"b": 2})
    both = merged([second, first])
    assert (both.judged, both.exercised, both.late) == ([0, 1, 2, 3, 4], [1, 2, 4], [(2, 1.5)])
    assert (both.broken_at, both.counterexample) == (4, {"a": 1})
    unbroken = merged([Evidence(judged=[0, 2]), Evidence(judged=[1], exercised=[1])])
    assert (unbroken.judged, unbroken.exercised, unbroken.broken_at) == ([0, 1, 2], [1], None)


def test_gather_returns_every_published_share(tmp_path: Path) -> None:
    """Published shares come back in share order, their evidence intact."""
    for index in (1, 0):
        announce(tmp_path, Share(index, 2), f"gw{index}")
        publish(tmp_path, Share(index, 2), Published(f"gw{index}", {"copy-per-path": Evidence([index])},
                                                    player={"plays": index}))
    found = gather(tmp_path, 2)
    assert [p.worker for p in found] == ["gw0", "gw1"]
    assert [p.evidence["copy-per-path"].judged for p in found] == [[0], [1]]


def test_a_share_whose_worker_died_is_an_error_not_a_wait(tmp_path: Path) -> None:
    """A worker gone without its share ends the wait at once with one line naming it."""
    publish(tmp_path, Share(0, 2), Published("gw0"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "1.pid").write_text(f"{dead.pid} gw1\n")
    with pytest.raises(ShareMissing, match=r"^share 2 of 2 of the search never came: its worker"
                                           rf" \(gw1, pid {dead.pid}\) ended without it$"):
        gather(tmp_path, 2)


def test_a_share_never_started_or_past_the_budget_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    """A worker that never announces its share, or still searches well past the budget, ends the
    wait with an error: a wait is bounded."""
    monkeypatch.setattr(shares, "STARTING", 0.1)
    with pytest.raises(ShareMissing, match="did not start it within"):
        gather(tmp_path, 1)
    announce(tmp_path, Share(0, 1), "gw0")  # this very process: alive, never publishing
    monkeypatch.setattr(shares, "AFTER_BUDGET", 0.0)
    with pytest.raises(ShareMissing, match="after the --budget was spent"):
        gather(tmp_path, 1, deadline=0.0)


def report(tmp_path: Path, name: str, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    path = tmp_path / f"{name}.json"
    result = pytest_in(ROOT, "-q", "-p", "no:cacheprovider", f"--report-json={path}",
                       f"--db={tmp_path / name}-db", *args)
    return result, json.loads(path.read_text()) if path.exists() else {}


def verdicts(data: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {e["id"]: (e["outcome"], e["examples"], e["exercised"], e["reason"],
                      (e["counterexample"] or {}).get("scenario")) for e in data["invariants"]}


@pytest.mark.parametrize(("sut", "status"), [("embedded:dedup-cyrus", 1), ("embedded", 0)])
def test_parallel_run_judges_as_a_serial_run_with_the_same_seed(tmp_path: Path, sut: str, status: int
                                                                 ) -> None:
    """`-n 2` on the embedded SUT gives every invariant the serial run's outcome, evidence counts
    and minimal story; both workers played their share of the search."""
    serial, by_serial = report(tmp_path, "serial", "--sut", sut, "--hypothesis-seed=5")
    parallel, by_parallel = report(tmp_path, "parallel", "--sut", sut, "--hypothesis-seed=5", "-n", "2")
    assert serial.returncode == parallel.returncode == status, parallel.stdout[-3000:]
    assert verdicts(by_parallel) == verdicts(by_serial)
    outcomes = {outcome for outcome, *_ in verdicts(by_serial).values()}
    assert outcomes == ({"passed", "failed"} if status else {"passed"})
    assert by_parallel["plays"]["played"] >= by_serial["plays"]["played"]


def test_a_worker_that_dies_before_its_share_errors_the_run(tmp_path: Path) -> None:
    """When a worker dies before publishing its share, no invariant passes and the run's status
    is an error: the other worker's tests end with an error naming the missing share, and
    invariants never run say the worker crashed."""
    (tmp_path / "die_before_share.py").write_text(
        "import os, pathlib, time\nimport pytest\n\n"
        "@pytest.hookimpl(wrapper=True, tryfirst=True)\n"
        "def pytest_runtestloop(session):\n"
        "    search = getattr(session.config, 'workerinput', {}).get('mailconform_search', {})\n"
        "    if search.get('index') == 1:  # once the other share is out, so the tests are handed out\n"
        "        while not (pathlib.Path(search['folder']) / '0.json').exists():\n"
        "            time.sleep(0.05)\n"
        "        time.sleep(0.5)\n"
        "        os._exit(3)\n"
        "    return (yield)\n")
    result = pytest_in(ROOT, "-q", "-p", "no:cacheprovider", "-p", "die_before_share", "-n", "2",
                       "--max-worker-restart=0", f"--report-json={tmp_path / 'r.json'}",
                       PYTHONPATH=f"{ROOT}:{tmp_path}")
    assert result.returncode == EXIT_SUT_ERROR, result.stdout[-3000:]
    judged = json.loads((tmp_path / "r.json").read_text())["invariants"]
    assert "passed" not in {e["outcome"] for e in judged}
    assert any(e["outcome"] == "error" and "never came" in e["reason"] for e in judged)
    for reason in (e["reason"] for e in judged):
        assert ("share 2 of 2 of the search never came: its worker (gw1, pid" in reason
                or reason.startswith("not run: an xdist worker crashed: gw1")), reason


def test_a_break_found_by_another_share_is_never_reported_as_a_pass() -> None:
    """Another share's first counterexample stands when this worker's property cannot shrink it:
    the budget ran out before it, or replaying that story here did not break the invariant."""
    judge = Judge(Player(InProcessSUT()))
    judge.search(list(BY_ID), PROFILE, 3, Share(0, 2))
    elsewhere = Evidence(judged=[1], exercised=[1], broken_at=1, counterexample={"text": "found on gw1"})
    judge.adopt([judge.evidence, {"bcc-not-disclosed": elsewhere}])
    for error, reason in ((OutOfTime(), "shrinking stopped there"), (None, "did not: its counterexample")):
        result = reporting._judged(judge, "bcc-not-disclosed", error)
        assert (result.outcome, result.examples) == ("failed", 2)  # examples 0 (here) and 1 (there)
        assert result.counterexample == {"text": "found on gw1"}
        assert reason in result.reason
    assert reporting._judged(judge, "trace-prepend-only", None).outcome == "passed"
