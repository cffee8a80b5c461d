"""Invariant checks judge refusals, notices and phantom copies as the RFCs say."""

from pathlib import Path

from mailconform.specs.invariants import BY_ID, CATALOGUE
from mailconform.specs.model import Plan, plan
from mailconform.specs.naming import Naming
from mailconform.specs.observation import Notice, Observation, ObservedCopy
from mailconform.specs.report import Report
from mailconform.specs.scenario import Scenario, SendAgain, Submit, World

NAMING = Naming("n0")
U1 = NAMING.address("u1")


def two_paths() -> Plan:
    scenario = Scenario(World(("u1",), ("r1",)), (Submit("m1", "r1", ("u1",)), SendAgain("m1")))
    return plan(scenario, NAMING, ("mx",))


def filed(the_plan: Plan, *paths: str) -> tuple[ObservedCopy, ...]:
    """Copies as a conforming store would file them for the given paths."""
    return tuple(ObservedCopy(U1, f"Return-Path: <{t.mail_from}>\r\n".encode() + t.data, t.id)
                 for t in the_plan.injections if t.id in paths)


def accepted_all(the_plan: Plan) -> dict[str, frozenset[str]]:
    return {t.id: frozenset(t.rcpts) for t in the_plan.injections}


def test_refused_path_owes_no_copy() -> None:
    """A recipient refused with 4xx/5xx is the sender's problem, not a loss."""
    the_plan = two_paths()
    first, _refused = the_plan.injections
    observation = Observation(filed(the_plan, first.id), accepted={first.id: frozenset({U1})})
    assert BY_ID["copy-per-path"].check(the_plan, observation) == []


def test_accepted_path_without_copy_is_a_loss() -> None:
    """Both transmissions accepted, one copy filed: copy-per-path fails for the second path."""
    the_plan = two_paths()
    observation = Observation(filed(the_plan, the_plan.injections[0].id), accepted=accepted_all(the_plan))
    (violation,) = BY_ID["copy-per-path"].check(the_plan, observation)
    assert violation.mailbox == U1 and the_plan.injections[1].id in violation.detail


def test_failure_notice_to_the_reverse_path_excuses_a_missing_copy() -> None:
    """A failure notice to the path's reverse-path naming the recipient keeps the promise."""
    the_plan = two_paths()
    sender = the_plan.injections[1].mail_from
    notice = Notice(sender, frozenset({U1}), NAMING.message_id("k1"))
    observation = Observation(filed(the_plan, the_plan.injections[0].id), (notice,),
                              accepted_all(the_plan))
    assert BY_ID["copy-per-path"].check(the_plan, observation) == []
    stray = Notice(sender, frozenset({"someone@isp.test"}), NAMING.message_id("k1"))
    assert BY_ID["copy-per-path"].check(the_plan, Observation(observation.copies, (stray,),
                                                              accepted_all(the_plan)))


def test_extra_copy_of_one_path_is_a_phantom() -> None:
    """Two copies by one path, without faults, break no-phantom-copies."""
    the_plan = two_paths()
    first = the_plan.injections[0].id
    copies = filed(the_plan, first) * 2 + filed(the_plan, the_plan.injections[1].id)
    (violation,) = BY_ID["no-phantom-copies"].check(the_plan, Observation(copies, (), accepted_all(the_plan)))
    assert first in violation.detail


def test_conforming_filing_holds_every_invariant() -> None:
    """Copies filed exactly as sent, with Return-Path, hold every invariant."""
    the_plan = two_paths()
    observation = Observation(filed(the_plan, *(t.id for t in the_plan.injections)), (),
                              accepted_all(the_plan))
    assert [v for inv in BY_ID.values() for v in inv.check(the_plan, observation)] == []


def test_readme_table_and_json_report_state_each_invariants_grounding() -> None:
    """README's invariant table and every JSON report entry give the catalogue's strength and binds."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for invariant in CATALOGUE:
        assert f"| `{invariant.id}` | {invariant.strength} | {invariant.binds} |" in readme
    for entry in Report("any").to_json()["invariants"]:
        invariant = BY_ID[entry["id"]]
        assert (entry["strength"], entry["binds"], entry["rfc"]) == (
            invariant.strength, invariant.binds, list(invariant.rfc))
