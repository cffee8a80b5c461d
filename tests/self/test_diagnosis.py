"""The dedup-key diagnosis names exactly the rule each known-bad store applies."""

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mailconform.specs import matrix
from mailconform.specs.diagnosis import Trial, conclude, next_gap
from mailconform.specs.impact import CANONICAL
from mailconform.specs.invariants import CATALOGUE
from mailconform.strategies import SEED_STORY
from mailconform.suts.base import execute
from mailconform.suts.diagnose import diagnose, impact
from mailconform.suts.policies import TIME_WINDOW
from mailconform.suts.registry import resolve
from tests.self.test_trust_servers import STORE
from tests.servers.ports import free_port

# The rule each built-in dedup policy applies, as the diagnosis must state it.
RULES = {
    "dedup-message-id": dict(key=["message-id"], overrides={}),
    "dedup-cyrus": dict(key=["message-id", "date"], overrides={}),
    "dedup-resent-aware": dict(key=["message-id"], overrides={"resent-message-id": "message-id"}),
    "dedup-content-hash": dict(key=["body"], overrides={}),
}
SHORT_GAP = (0.3,)


def measured(sut_name: str, gaps: tuple[float, ...] = SHORT_GAP) -> dict[str, Any]:
    sut = resolve(sut_name)
    try:
        run = execute(sut, SEED_STORY)
        return diagnose(sut, run.plan, run.observation, gaps=gaps).to_json()
    finally:
        sut.close()


@pytest.mark.parametrize("transport", ["embedded", "embedded-lmtp"])
@pytest.mark.parametrize("policy_name", sorted(RULES))
def test_diagnosis_names_the_policys_key(policy_name: str, transport: str) -> None:
    """Over SMTP and LMTP, each dedup policy's key, scope and ignored properties come out exactly."""
    found = measured(f"{transport}:{policy_name}")
    assert {k: found[k] for k in RULES[policy_name]} == RULES[policy_name], found["summary"]
    assert found["scope"] == "mailbox"
    assert found["window_seconds"] is None
    assert found["case_sensitive"] is (True if "message-id" in found["key"] else None)
    ignored = set(found["ignored"])
    assert {"from", "subject", "list-id", "envelope-sender", "connection"} <= ignored
    assert ignored.isdisjoint(found["key"])


@pytest.mark.parametrize("transport", ["embedded", "embedded-lmtp"])
def test_diagnosis_measures_a_time_window(transport: str) -> None:
    """A store that forgets a Message-ID after a time window is diagnosed with that window."""
    found = measured(f"{transport}:dedup-time-window", gaps=(1.5, 3.0))
    assert found["key"] == ["message-id"]
    window, tolerance = found["window_seconds"], found["window_tolerance_seconds"]
    assert isinstance(window, float) and isinstance(tolerance, float)
    assert tolerance <= 0.25
    assert abs(window - TIME_WINDOW) <= tolerance + 0.05, found["experiments"]


def test_a_conforming_store_has_nothing_to_diagnose() -> None:
    """Against the reference store the pair is filed twice: no rule is claimed."""
    sut = resolve("embedded:dedup-message-id")
    reference = resolve("embedded")
    try:
        run = execute(sut, SEED_STORY)
        found = diagnose(reference, run.plan, run.observation, gaps=SHORT_GAP)
    finally:
        sut.close()
        reference.close()
    assert found.key is None
    assert "did not reproduce" in found.summary


def trial(vary: str, result: str, gap: float | None = None) -> Trial:
    return Trial(vary, result, 1 if result != "filed" else 2, 2, gap)


def test_contradicting_controls_claim_no_key() -> None:
    """When the unchanged pair loses a copy once and files both once, no key is claimed."""
    found = conclude([trial("none", "lost"), trial("message-id", "filed"), trial("none", "filed")])
    assert found.key is None and "inconsistent" in found.summary


def test_timing_that_contradicts_itself_claims_no_key() -> None:
    """A copy filed after a short pause but lost after a longer one is reported as inconsistent."""
    found = conclude([trial("none", "lost"), trial("message-id", "filed"),
                      trial("gap", "filed", 1.0), trial("gap", "lost", 3.0), trial("none", "lost")])
    assert found.key is None and "inconsistent timing" in found.summary


def test_a_copy_lost_even_alone_is_not_a_duplicate_rule() -> None:
    """A store that loses the copy without its twin is not described by a duplicate key."""
    found = conclude([trial("none", "lost"), trial("alone", "lost"), trial("message-id", "filed")])
    assert found.key is None and "alone" in found.summary


def test_refused_and_unread_experiments_claim_nothing() -> None:
    """A variation the SUT refused, or whose copy could not be looked for, is neither key nor ignored."""
    found = conclude([trial("none", "lost"), trial("message-id", "filed"), trial("date", "refused"),
                      trial("recipient-detail", "unseen"), trial("body", "lost")])
    assert found.key == ("message-id",)
    assert found.ignored == ("body",)


def test_gap_search_narrows_to_the_tolerance() -> None:
    """Pauses are tried in order until one files the copy, then halved down to the tolerance."""
    trials = [trial("gap", "lost", 3.0)]
    assert next_gap(trials, (3.0, 30.0), 0.25) == 30.0
    trials.append(trial("gap", "filed", 30.0))
    assert next_gap(trials, (3.0, 30.0), 0.25) == 16.5
    assert next_gap([trial("gap", "filed", 0.4)], (3.0,), 0.25) is None
    assert next_gap([trial("gap", "refused", 3.0)], (3.0, 30.0), 0.25) is None
    assert next_gap([trial("gap", "not-run")], (3.0, 30.0), 0.25) is None


@pytest.mark.parametrize("sut_name, losing", [
    ("embedded", set()),
    ("embedded:dedup-message-id", {"post to a list and Bcc to self", "to an alias and directly",
                                   "through a forwarder and directly",
                                   "resent to a recipient who has the original",
                                   "two different messages sharing a Message-ID"}),
    ("embedded-lmtp:dedup-resent-aware", {"post to a list and Bcc to self", "to an alias and directly",
                                          "through a forwarder and directly",
                                          "two different messages sharing a Message-ID"}),
])
def test_impact_table_names_every_story_the_store_loses(sut_name: str, losing: set[str]) -> None:
    """The impact table marks exactly the canonical stories the store loses a copy of."""
    sut = resolve(sut_name)
    try:
        rows = impact(sut)
    finally:
        sut.close()
    assert {r.story for r in rows} == {s.name for s in CANONICAL}
    assert {r.story for r in rows if r.loses} == losing
    assert all(r.owed == 2 and r.filed in (1, 2) for r in rows if not r.at_least)


def test_matrix_shows_each_failures_rule_and_impact() -> None:
    """The matrix page headlines a failure's diagnosed rule and its impact table (Markdown and HTML)."""
    rows = [{"story": "post to a list and Bcc to self", "owed": 2, "filed": 1, "loses": True},
            {"story": "the same message retransmitted", "owed": 2, "filed": 1, "loses": False,
             "at_least": 1},
            {"story": "to an alias and directly", "owed": 0, "filed": 0, "loses": False,
             "error": "a | b"}]
    example = {"text": "copy-per-path violated by x", "messages": 1, "transactions": 2,
               "diagnosis": {"summary": "drops a copy when the mailbox has already received one with"
                                        " the same Message-ID"}, "impact": rows}
    report = {"sut": "x", "transport": "smtp", "invariants": [
        {"id": inv.id, "rfc": list(inv.rfc), "strength": inv.strength, "outcome": "failed",
         "counterexample": example if inv.id == "copy-per-path" else None} for inv in CATALOGUE]}
    page = matrix.markdown([report], {})
    assert "**The rule:** drops a copy when the mailbox has already received one with the same" \
           " Message-ID." in page
    assert "| post to a list and Bcc to self | 2 | 1 | **yes** |" in page
    assert "| the same message retransmitted | 1 | 1 | no |" in page
    assert "| to an alias and directly | 0 | 0 | not played (a \\| b) |" in page
    html = matrix.html([report], {})
    assert "<b>The rule:</b> drops a copy" in html
    assert "<td>post to a list and Bcc to self</td><td>2</td><td>1</td><td><b>yes</b></td>" in html
    assert "<td>to an alias and directly</td><td>0</td><td>0</td><td>not played (a | b)</td>" in html


def test_diagnosis_and_impact_stop_at_the_runs_deadline() -> None:
    """Past the run's budget no experiment is played and nothing is claimed: no key, no loss."""
    sut = resolve("embedded:dedup-message-id")
    try:
        run = execute(sut, SEED_STORY)
        found = diagnose(sut, run.plan, run.observation, gaps=SHORT_GAP, deadline=time.time())
        rows = impact(sut, deadline=time.time())
    finally:
        sut.close()
    assert found.key is None and found.experiments == () and "time budget" in found.summary
    assert [r.story for r in rows] == [s.name for s in CANONICAL]
    assert all(r.error and not r.loses for r in rows)


def test_a_late_copy_is_not_taken_for_a_dropped_one(tmp_path: Path) -> None:
    """A queueing store that files a copy with a known Message-ID late (after the barrier) but
    loses nothing: read again after the quiescence bound, no experiment lost a copy, no rule."""
    port, root = free_port(), tmp_path / "mail"
    config = tmp_path / "sut.toml"
    config.write_text(f'name = "late-store"\ninject = "smtp://127.0.0.1:{port}"\ndomains = ["isp.test"]\n'
                      f'mailbox = "maildir:{root}/{{local}}/Maildir"\n'
                      "[timeouts]\nquiescence = 3.0\nsettle = 0.3\n")
    store = subprocess.Popen([sys.executable, str(STORE), "--port", str(port), "--root", str(root),
                              "--late-duplicates", "1.0"], stdout=subprocess.PIPE, text=True)
    try:
        assert store.stdout and store.stdout.readline().strip() == "ready"
        sut = resolve("store", config)
        try:
            run = execute(sut, SEED_STORY)
            assert len(run.observation.copies) == 1, "the late copy must be missing when play() returns"
            found = diagnose(sut, run.plan, run.observation, gaps=SHORT_GAP)
        finally:
            sut.close()
    finally:
        store.terminate()
        store.wait(timeout=10)
    assert found.key is None and "did not reproduce" in found.summary, found.text()
    assert all(t.result == "filed" for t in found.experiments if t.vary == "none")
    assert any("came late" in t.note for t in found.experiments), found.text()
