"""Each invariant check, on hand-built plans and observations: it fails where the RFCs say a
server went wrong, and holds where the server did what they allow."""

from collections.abc import Callable
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path

from mailconform.specs.invariants import BY_ID, CATALOGUE, Violation, attribute, owed
from mailconform.specs.model import Plan, Transaction, plan
from mailconform.specs.naming import Naming
from mailconform.specs.observation import Notice, Observation, ObservedCopy
from mailconform.specs.report import Report
from mailconform.specs.scenario import MailingList, Resend, Scenario, SendAgain, Submit, World

NAMING = Naming("n0")
U1, U2, U3 = (NAMING.address(u) for u in ("u1", "u2", "u3"))
WORLD = World(("u1", "u2", "u3"), ("r1", "r2"), lists=(MailingList("L1", ("u1",)),),
              forwards=(("f1", "u1"),))
Edit = Callable[[Message], None]


def planned(*events: Submit | Resend | SendAgain, roles: tuple[str, ...] = ("mx",)) -> Plan:
    return plan(Scenario(WORLD, events), NAMING, roles)  # type: ignore[arg-type]


def stored(tx: Transaction, mailbox: str, edit: Edit | None = None, return_path: str | None = None) -> bytes:
    """The copy as a conforming store files it: Return-Path, its own Received, the data."""
    message = message_from_bytes(tx.data, policy=policy.compat32)  # allows doubled fields
    if edit:
        edit(message)
    rp = tx.mail_from if return_path is None else return_path
    own = "Received: from upstream by mx.isp.test with ESMTP id own1; Mon, 30 Nov 2026 09:00:00 +0000\r\n"
    return f"Return-Path: <{rp}>\r\n{own}".encode() + message.as_bytes()


def copy(tx: Transaction, mailbox: str = U1, edit: Edit | None = None,
         return_path: str | None = None) -> ObservedCopy:
    raw = stored(tx, mailbox, edit, return_path)
    parsed = message_from_bytes(raw, policy=policy.default)
    ids = [found for value in parsed.get_all("Received", [])
           if (found := NAMING.transaction_id_in(" ".join(str(value).split())))]
    return ObservedCopy(mailbox, raw, ids[0] if ids else None)


def everything(the_plan: Plan) -> dict[str, frozenset[str]]:
    return {t.id: frozenset(t.rcpts) for t in the_plan.injections}


def seen(the_plan: Plan, *copies: ObservedCopy, notices: tuple[Notice, ...] = (),
         accepted: dict[str, frozenset[str]] | None = None) -> Observation:
    return Observation(copies, notices, everything(the_plan) if accepted is None else accepted)


def check(invariant: str, the_plan: Plan, observation: Observation) -> list[Violation]:
    return BY_ID[invariant].check(the_plan, observation)


def all_checks(the_plan: Plan, observation: Observation) -> dict[str, list[Violation]]:
    return {inv.id: found for inv in CATALOGUE if (found := inv.check(the_plan, observation))}


# Two distinct messages from two senders to u1: two distinct paths.
TWO = planned(Submit("m1", "r1", ("u1",)), Submit("m2", "r2", ("u1",), message_id="k2"))
# The same message sent again over the same route: one path, two transmissions.
AGAIN = planned(Submit("m1", "r1", ("u1",)), SendAgain("m1"))
# r1 writes to u1 and blind-copies u2 and u3: one transaction to all three.
BLIND = planned(Submit("m1", "r1", ("u1",), bcc=("u2", "u3")))
# r1 posts to L1 (u1 subscribed): a copy with two suite hops in its trace.
LISTED = planned(Submit("m1", "r1", ("L1",)))


# copy-per-path


def test_every_path_filed_holds_every_invariant() -> None:
    """Copies filed exactly as sent, with Return-Path and the store's own trace, break nothing."""
    for the_plan in (TWO, AGAIN, BLIND, LISTED):
        copies = [copy(t, e.mailbox) for t in the_plan.injections
                  for e in the_plan.expected if e.path == t.id]
        assert all_checks(the_plan, seen(the_plan, *copies)) == {}


def test_accepted_path_without_copy_is_a_loss_naming_the_path() -> None:
    """Both distinct paths accepted, one copy filed: copy-per-path names the missing path."""
    first, second = TWO.injections
    (violation,) = check("copy-per-path", TWO, seen(TWO, copy(first)))
    assert violation.mailbox == U1
    assert violation.detail.startswith(f"no copy by path {second.id} (r2's agent -> SUT)")
    assert f"no failure notice to {second.mail_from}" in violation.detail


def test_refused_path_owes_no_copy() -> None:
    """A recipient refused with 4xx/5xx is the sender's problem, not a loss."""
    first, second = TWO.injections
    assert check("copy-per-path", TWO, seen(TWO, copy(first), accepted={first.id: frozenset({U1})})) == []
    refused_u1 = {first.id: frozenset({U1}), second.id: frozenset({U2})}
    assert check("copy-per-path", TWO, seen(TWO, copy(first), accepted=refused_u1)) == []


def test_path_owed_only_when_a_recipient_leading_there_was_accepted() -> None:
    """In a transaction to u1 and u2, u1's path is owed only if u1's RCPT was accepted."""
    (tx,) = BLIND.injections
    only_u2 = {tx.id: frozenset({U2})}
    assert [e.mailbox for e in owed(BLIND, seen(BLIND, accepted=only_u2))] == [U2]
    (violation,) = check("copy-per-path", BLIND, seen(BLIND, accepted=only_u2))
    assert violation.mailbox == U2


def test_what_a_play_owes_is_worked_out_once_and_never_for_another_play() -> None:
    """Every invariant asking about one play shares one answer; another plan or observation gets its own."""
    everyone = seen(BLIND)
    assert owed(BLIND, everyone) is owed(BLIND, everyone)
    assert attribute(BLIND, everyone) is attribute(BLIND, everyone)
    assert len(owed(BLIND, everyone)) == 3
    assert len(owed(TWO, everyone)) == 1  # the same observation, another plan: TWO's t2 was not accepted
    assert len(owed(BLIND, seen(BLIND, accepted={}))) == 0  # the same plan, another observation


def test_path_through_the_sut_twice_is_owed_only_when_both_hops_were_accepted() -> None:
    """A list post submitted through the SUT owes the list's copy only if both transactions were taken."""
    the_plan = planned(Submit("m1", "u2", ("L1",)), roles=("mx", "submission"))
    submitted, listed = the_plan.injections
    (list_copy,) = [e for e in the_plan.expected if e.mailbox == U1]
    assert [tx for tx, _ in list_copy.requires] == [submitted.id, listed.id]
    refused_submission = {submitted.id: frozenset(), listed.id: frozenset({U1})}
    assert list_copy not in owed(the_plan, seen(the_plan, accepted=refused_submission))
    assert list_copy in owed(the_plan, seen(the_plan))


def test_retransmission_owes_at_least_one_copy() -> None:
    """The same message sent again over one route: one copy, by either transmission, conforms."""
    first, again = AGAIN.injections
    for copies in ((copy(first),), (copy(again),), (copy(first), copy(again))):
        assert check("copy-per-path", AGAIN, seen(AGAIN, *copies)) == []
        assert check("no-phantom-copies", AGAIN, seen(AGAIN, *copies)) == []
    (violation,) = check("copy-per-path", AGAIN, seen(AGAIN))
    assert f"no copy by path {first.id}" in violation.detail
    assert f"or its retransmission {again.id}" in violation.detail


def test_retransmission_owed_when_only_the_second_was_accepted() -> None:
    """If only the retransmission was accepted, its copy is still owed."""
    first, again = AGAIN.injections
    only_again = {first.id: frozenset(), again.id: frozenset({U1})}
    assert check("copy-per-path", AGAIN, seen(AGAIN, accepted=only_again))
    assert check("copy-per-path", AGAIN, seen(AGAIN, copy(again), accepted=only_again)) == []


def test_failure_notice_to_the_reverse_path_excuses_a_missing_copy() -> None:
    """A notice to the path's reverse-path naming the recipient and the message keeps the promise;
    one naming another recipient, another message or sent elsewhere does not."""
    first, second = TWO.injections
    k2 = NAMING.message_id("k2")
    good = Notice(second.mail_from, frozenset({U1}), k2)
    assert check("copy-per-path", TWO, seen(TWO, copy(first), notices=(good,))) == []
    for stray in (replace(good, recipients=frozenset({U2})),
                  replace(good, message_id=NAMING.message_id("k1")),
                  replace(good, mailbox=first.mail_from)):
        assert check("copy-per-path", TWO, seen(TWO, copy(first), notices=(stray,))), stray


def test_one_notice_excuses_one_missing_copy() -> None:
    """Two missing paths of one message to one reverse-path need two notices."""
    the_plan = planned(Submit("m1", "r1", ("u1",)), Resend("m1", "r1", ("u1",)))
    notice = Notice(NAMING.address("r1"), frozenset({U1}), NAMING.message_id("k1"))
    assert len(check("copy-per-path", the_plan, seen(the_plan, notices=(notice,)))) == 1
    assert check("copy-per-path", the_plan, seen(the_plan, notices=(notice, notice))) == []


# Damaged traces


def _reversed_trace(message: Message) -> None:
    trace = message.get_all("Received", [])
    del message["Received"]
    rest = list(message.items())
    for name in {n for n, _ in rest}:
        del message[name]
    for value in reversed(trace):
        message["Received"] = value
    for name, value in rest:
        message[name] = value


def test_damaged_trace_is_reported_once_and_judged_by_nothing_else() -> None:
    """A copy whose trace no longer names its path fails trace-prepend-only only: its path stays
    unjudged rather than blamed on the wrong one."""
    (tx,) = LISTED.injections
    damaged = copy(tx, edit=_reversed_trace)
    attribution = attribute(LISTED, seen(LISTED, damaged))
    assert attribution.damaged == [damaged] and attribution.matched == []
    found = all_checks(LISTED, seen(LISTED, damaged))
    assert list(found) == ["trace-prepend-only"]
    assert "no longer names its path" in found["trace-prepend-only"][0].detail


def test_a_damaged_copy_leaves_only_one_missing_path_unjudged() -> None:
    """One damaged copy may stand for one missing path, not two; nor is it a phantom unless
    there are more of them than missing paths."""
    the_plan = planned(Submit("m1", "r1", ("L1",)), Submit("m2", "r2", ("u1",), message_id="k2"),
                       Submit("m3", "r2", ("u1",), message_id="k3"))
    listed = the_plan.injections[0]
    damaged = copy(listed, edit=_reversed_trace)
    assert len(check("copy-per-path", the_plan, seen(the_plan, damaged))) == 2
    assert check("no-phantom-copies", the_plan, seen(the_plan, damaged)) == []
    filed_all = [copy(t) for t in the_plan.injections]
    (phantom,) = check("no-phantom-copies", the_plan, seen(the_plan, *filed_all, damaged))
    assert "1 copy whose trace names no path, but only 0 owed copies are missing" in phantom.detail
    # Two damaged copies where one path is missing: one of them is a phantom.
    (one_missing,) = check("no-phantom-copies", the_plan, seen(the_plan, *filed_all[1:], damaged, damaged))
    assert "2 copies whose trace names no path, but only 1 owed copy is missing" in one_missing.detail


def test_untraced_copy_is_a_trace_violation_only_in_a_mailbox_the_story_reaches() -> None:
    """A copy with none of the suite's Received fields fails trace-prepend-only where a copy was owed."""
    (tx,) = BLIND.injections

    def strip(message: Message) -> None:
        del message["Received"]
    (violation,) = check("trace-prepend-only", BLIND, seen(BLIND, copy(tx, U1, strip)))
    assert "none of the Received fields" in violation.detail
    elsewhere = copy(tx, "someone@isp.test", strip)
    assert check("trace-prepend-only", BLIND, seen(BLIND, elsewhere)) == []
    # Each damaged copy is reported, whatever comes before it.
    listed = LISTED.injections[0]
    both = seen(LISTED, copy(listed, U1, strip), copy(listed, U1, _reversed_trace))
    assert len(check("trace-prepend-only", LISTED, both)) == 2


# no-phantom-copies


def test_extra_copy_of_one_transaction_is_a_phantom() -> None:
    """Two copies by one transaction, without faults, break no-phantom-copies."""
    first, second = TWO.injections
    (violation,) = check("no-phantom-copies", TWO, seen(TWO, copy(first), copy(first), copy(second)))
    assert violation.detail == f"1 more copy by transaction {first.id} than the one it owes"
    (two_more,) = check("no-phantom-copies", TWO, seen(TWO, *[copy(first)] * 3, copy(second)))
    assert two_more.detail.startswith("2 more copies")


def test_copy_of_a_refused_or_foreign_transaction_is_a_phantom() -> None:
    """A copy by a transaction the SUT refused, or filed where that transaction owes nothing, is a phantom."""
    first, second = TWO.injections
    (refused,) = check("no-phantom-copies", TWO,
                       seen(TWO, copy(first), copy(second), accepted={first.id: frozenset({U1})}))
    assert refused.detail == f"1 copy by transaction {second.id}, which owes this mailbox none"
    (misfiled,) = check("no-phantom-copies", TWO, seen(TWO, copy(first), copy(second), copy(first, U2)))
    assert misfiled.mailbox == U2
    assert attribute(TWO, seen(TWO, copy(first, U2))).stray


def test_recipient_repeated_in_one_transaction_owes_one_copy() -> None:
    """To and Cc naming u1 send RCPT u1 twice: one copy conforms, two are a phantom."""
    the_plan = planned(Submit("m1", "r1", ("u1",), cc=("u1",)))
    (tx,) = the_plan.injections
    assert tx.rcpts == (U1, U1)
    assert check("no-phantom-copies", the_plan, seen(the_plan, copy(tx))) == []
    assert check("no-phantom-copies", the_plan, seen(the_plan, copy(tx), copy(tx)))


# message-id-preserved and resent-keeps-message-id


def _set(name: str, value: str | None) -> Edit:
    def edit(message: Message) -> None:
        del message[name]
        if value is not None:
            message[name] = value
    return edit


def test_message_id_must_be_kept_exactly() -> None:
    """A replaced, re-cased or doubled Message-ID breaks message-id-preserved."""
    first, _ = TWO.injections
    k1 = NAMING.message_id("k1")

    def doubled(message: Message) -> None:
        message["Message-ID"] = "<other@ids.example>"
    for edit in (_set("Message-ID", "<new@mx.isp.test>"), _set("Message-ID", k1.upper()), doubled):
        (violation,) = check("message-id-preserved", TWO, seen(TWO, copy(first, edit=edit)))
        assert violation.detail.startswith(f"copy by path {first.id} has Message-ID")
    assert check("message-id-preserved", TWO, seen(TWO, copy(first))) == []


RESENT = planned(Submit("m1", "r1", ("u2",)), Resend("m1", "r2", ("u1",), True))
RESENT_NO_ID = planned(Submit("m1", "r1", ("u2",)), Resend("m1", "r2", ("u1",), False))


def test_resent_copy_keeps_its_block_and_the_original_message_id() -> None:
    """Dropping Resent-From, Resent-Date or a given Resent-Message-ID, or changing the Message-ID,
    breaks resent-keeps-message-id; a copy kept as sent does not."""
    _, resend = RESENT.injections
    assert check("resent-keeps-message-id", RESENT, seen(RESENT, copy(resend))) == []
    for edit in (_set("Resent-From", None), _set("Resent-Date", None), _set("Resent-Message-ID", None),
                 _set("Message-ID", "<new@mx.isp.test>")):
        assert check("resent-keeps-message-id", RESENT, seen(RESENT, copy(resend, edit=edit)))


def test_resent_without_resent_message_id_is_still_checked() -> None:
    """A resend sent without Resent-Message-ID must still keep its block and Message-ID."""
    _, resend = RESENT_NO_ID.injections
    assert check("resent-keeps-message-id", RESENT_NO_ID, seen(RESENT_NO_ID, copy(resend))) == []
    assert check("resent-keeps-message-id", RESENT_NO_ID,
                 seen(RESENT_NO_ID, copy(resend, edit=_set("Resent-From", None))))
    assert check("resent-keeps-message-id", RESENT_NO_ID,
                 seen(RESENT_NO_ID, copy(resend, edit=_set("Message-ID", "<x@y.example>"))))


def test_a_copy_that_was_never_resent_owes_no_resent_block() -> None:
    """The original submission's copy has no Resent block to keep; the resent one still does."""
    original, resend = RESENT.injections
    assert check("resent-keeps-message-id", RESENT, seen(RESENT, copy(original, U2))) == []
    stripped = copy(resend, edit=_set("Resent-From", None))
    assert check("resent-keeps-message-id", RESENT, seen(RESENT, copy(original, U2), stripped))


# bcc-not-disclosed


def _add(name: str, value: str) -> Edit:
    def edit(message: Message) -> None:
        message[name] = value
    return edit


def test_any_header_naming_a_hidden_recipient_discloses_it() -> None:
    """Bcc, Apparently-To, X-Original-To or a Received `for` clause naming u2 in u1's copy breaks
    bcc-not-disclosed; naming only u1 there does not."""
    (tx,) = BLIND.injections
    for name, value in (("Bcc", U2), ("Apparently-To", f"<{U3}>"), ("X-Original-To", U2.upper()),
                        ("Received", f"from a by b with ESMTP id z for <{U1}>, <{U2}>; Mon, 30 Nov 2026")):
        (violation,) = check("bcc-not-disclosed", BLIND, seen(BLIND, copy(tx, U1, _add(name, value))))
        assert violation.detail.startswith(f"copy by path {tx.id} shows blind recipients in {name}:")
    assert check("bcc-not-disclosed", BLIND, seen(BLIND, copy(tx, U1, _add("Delivered-To", U1)))) == []


def test_blind_recipients_copies_may_show_the_bcc_field_but_nothing_else() -> None:
    """Under separate copies, u2's own copy may carry the Bcc field; another header naming u3 there
    still discloses u3, and u1's copy may not show Bcc at all."""
    the_plan = planned(Submit("m1", "r1", ("u1",), bcc=("u2", "u3"), bcc_mode="separate"))
    main, to_u2, _ = the_plan.injections
    assert check("bcc-not-disclosed", the_plan, seen(the_plan, copy(to_u2, U2))) == []
    assert check("bcc-not-disclosed", the_plan, seen(the_plan, copy(to_u2, U2, _add("Apparently-To", U3))))
    assert check("bcc-not-disclosed", the_plan, seen(the_plan, copy(main, U1, _add("Bcc", U2))))


def test_own_addresses_and_the_authors_mailbox_hide_nothing() -> None:
    """Showing u1 a forward that leads only to him, or showing the author whom he blind-copied,
    discloses nothing."""
    own = planned(Submit("m1", "r1", ("u1",), bcc=("f1",)))
    shown_f1 = copy(own.injections[0], U1, _add("Bcc", "f1@fwd.test"))
    assert check("bcc-not-disclosed", own, seen(own, shown_f1)) == []
    author = planned(Submit("m1", "u1", ("u1",), bcc=("u2",)))
    shown_u2 = copy(author.injections[0], U1, _add("Bcc", U2))
    assert check("bcc-not-disclosed", author, seen(author, shown_u2)) == []


def test_relayed_copies_are_checked_too() -> None:
    """As submission server, a copy the SUT relays to a remote recipient must not show the Bcc."""
    the_plan = planned(Submit("m1", "u1", ("r1",), bcc=("u2",)), roles=("mx", "submission"))
    (tx,) = the_plan.injections
    relayed = copy(tx, NAMING.address("r1"))  # the Bcc field left as the author wrote it
    assert check("bcc-not-disclosed", the_plan, seen(the_plan, relayed))


# trace-prepend-only


def test_trace_fields_sent_must_stay_below_in_order() -> None:
    """Removing or reordering the Received fields the suite sent breaks trace-prepend-only; the
    store prepending its own does not."""
    (tx,) = LISTED.injections
    assert check("trace-prepend-only", LISTED, seen(LISTED, copy(tx))) == []

    def drop_oldest(message: Message) -> None:
        trace = message.get_all("Received", [])
        del message["Received"]
        rest = list(message.items())
        for name in {n for n, _ in rest}:
            del message[name]
        message["Received"] = trace[0]
        for name, value in rest:
            message[name] = value

    def reword_oldest(message: Message) -> None:
        trace = message.get_all("Received", [])
        del message["Received"]
        rest = list(message.items())
        for name in {n for n, _ in rest}:
            del message[name]
        message["Received"] = trace[0]
        message["Received"] = str(trace[1]).replace("by", "via", 1)
        for name, value in rest:
            message[name] = value
    for edit in (drop_oldest, reword_oldest):
        (violation,) = check("trace-prepend-only", LISTED, seen(LISTED, copy(tx, edit=edit)))
        assert violation.mailbox == U1
    # A store that adds no Received of its own has still kept the trace it was sent.
    unstamped = ObservedCopy(U1, f"Return-Path: <{tx.mail_from}>\r\n".encode() + tx.data, tx.id)
    assert check("trace-prepend-only", LISTED, seen(LISTED, unstamped)) == []


def test_single_hop_trace_moved_below_the_stores_own_is_caught() -> None:
    """A one-hop copy whose store put its own Received under the suite's is still attributed,
    and fails trace-prepend-only alone."""
    (tx, _) = TWO.injections
    moved = copy(tx, edit=_add("Received", "from x by mx.isp.test with ESMTP id own2; Mon, 30 Nov 2026"))
    found = all_checks(TWO, seen(TWO, moved, copy(TWO.injections[1])))
    assert list(found) == ["trace-prepend-only"]
    detail = found["trace-prepend-only"][0].detail
    assert "were not kept below the new ones in order (1 sent, 3 found)" in detail


# return-path-is-last-envelope-sender


def test_return_path_is_the_last_hops_mail_from() -> None:
    """Return-Path must be the topmost field and the list's bounce address, compared without case."""
    (tx,) = LISTED.injections
    bounces = "l1-bounces@lists.test"
    rule = "return-path-is-last-envelope-sender"
    assert check(rule, LISTED, seen(LISTED, copy(tx, return_path=bounces.upper()))) == []
    (violation,) = check(rule, LISTED, seen(LISTED, copy(tx, return_path=NAMING.address("r1"))))
    assert violation.detail.endswith(f"last MAIL FROM was <{bounces}>")
    below = copy(tx, edit=_add("Return-Path", "<r1@remote.example>"))  # a stale one further down
    assert check(rule, LISTED, seen(LISTED, below)) == []
    missing = ObservedCopy(U1, copy(tx).raw.split(b"\r\n", 1)[1], tx.id)
    assert check(rule, LISTED, seen(LISTED, missing))


def test_readme_table_and_json_report_state_each_invariants_grounding() -> None:
    """README's invariant table and every JSON report entry give the catalogue's strength and binds."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for invariant in CATALOGUE:
        assert f"| `{invariant.id}` | {invariant.strength} | {invariant.binds} |" in readme
    for entry in Report("any").to_json()["invariants"]:
        invariant = BY_ID[entry["id"]]
        assert (entry["strength"], entry["binds"], entry["rfc"]) == (
            invariant.strength, invariant.binds, list(invariant.rfc))
