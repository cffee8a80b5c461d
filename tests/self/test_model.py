"""Hand-worked cases for the reference delivery model."""

from collections import Counter

from mailconform.specs.model import Plan, Transaction, plan
from mailconform.specs.naming import Naming
from mailconform.specs.scenario import BccMode, MailingList, Resend, Scenario, SendAgain, Submit, World

NAMING = Naming("n0")
U1, U2 = NAMING.address("u1"), NAMING.address("u2")


def copies(the_plan: Plan) -> Counter[str]:
    return Counter(NAMING.symbol_of(e.mailbox) for e in the_plan.expected)


def mx_plan(world: World, *events: object) -> Plan:
    return plan(Scenario(world, tuple(events)), NAMING, ("mx",))  # type: ignore[arg-type]


def test_seed_story_owes_the_poster_two_copies() -> None:
    """A poster on his own list who Bccs himself is owed the Bcc copy and the list's copy."""
    world = World(("u1",), lists=(MailingList("L1", ("u1",)),))
    the_plan = mx_plan(world, Submit("m1", "u1", to=("L1",), bcc=("u1",)))
    assert copies(the_plan) == {"u1": 2}
    assert [t.hop for t in the_plan.injections] == ["u1's agent", "list L1"]
    assert len({e.path for e in the_plan.expected}) == 2
    assert {e.message_id for e in the_plan.expected} == {NAMING.message_id("k1")}


def test_recipient_repeated_in_one_transaction_is_one_path() -> None:
    """To and Cc naming the same user are sent as two RCPTs, yet with an alias reaching him make one copy."""
    world = World(("u1", "u2"), aliases=(("a1", ("u1", "u2")),))
    the_plan = mx_plan(world, Submit("m1", "u2", to=("u1", "a1"), cc=("u1",)))
    assert copies(the_plan) == {"u1": 1, "u2": 1}
    assert the_plan.injections[0].rcpts == (U1, NAMING.address("a1"), U1)
    (u1_copy,) = [e for e in the_plan.expected if e.mailbox == U1]
    assert u1_copy.requires == ((the_plan.injections[0].id, frozenset({U1, NAMING.address("a1")})),)


def test_upstream_alias_expansion_for_servers_without_aliases() -> None:
    """When the SUT has no alias table, the suite's hop expands aliases before injecting."""
    world = World(("u1", "u2"), aliases=(("a1", ("u1", "u2")),))
    scenario = Scenario(world, (Submit("m1", "u2", to=("u1", "a1")),))
    the_plan = plan(scenario, NAMING, ("mx",), sut_expands_aliases=False)
    assert the_plan.injections[0].rcpts == (U1, U2)


def test_separate_bcc_copies_are_separate_paths() -> None:
    """Under the separate-copy Bcc treatment only the blind recipient's copy may show Bcc."""
    world = World(("u1", "u2"), ("r1",))
    the_plan = mx_plan(world, Submit("m1", "r1", to=("u1",), bcc=("u2",), bcc_mode="separate"))
    assert [t.rcpts for t in the_plan.injections] == [(U1,), (U2,)]
    assert {NAMING.symbol_of(e.mailbox): e.may_show_bcc for e in the_plan.expected} == {
        "u1": False, "u2": True}
    assert not the_plan.injections[0].content.values("Bcc")
    assert the_plan.injections[1].content.values("Bcc") == [U2]


def test_list_copy_has_new_reverse_path_and_keeps_message_id() -> None:
    """A list's copy comes from the list's bounce address, adds List-Id, keeps Message-ID."""
    world = World(("u1",), ("r1",), lists=(MailingList("L1", ("u1", "r1")),))
    the_plan = mx_plan(world, Submit("m1", "r1", to=("L1",)))
    (tx,) = the_plan.injections
    assert tx.mail_from == "l1-bounces@lists.test"
    assert tx.content.values("List-Id") == ["<l1.lists.test>"]
    assert [name for name, _ in tx.content.headers[-2:]] == ["List-Id", "List-Post"]
    assert tx.content.values("Message-ID") == [NAMING.message_id("k1")]
    assert len(tx.content.values("Received")) == 2  # the author's agent, then the list
    assert the_plan.expected[0].return_path == "l1-bounces@lists.test"


def test_forward_keeps_reverse_path() -> None:
    """A forwarding host changes only the recipient."""
    world = World(("u1",), ("r1",), forwards=(("f1", "u1"),))
    the_plan = mx_plan(world, Submit("m1", "r1", to=("f1",)))
    (tx,) = the_plan.injections
    assert (tx.hop, tx.mail_from, tx.rcpts) == ("forwarder f1", NAMING.address("r1"), (U1,))


def test_resend_prepends_block_and_keeps_message_id() -> None:
    """A resend puts its Resent block on top and leaves Message-ID and Date alone."""
    world = World(("u1", "u2"), ("r1",))
    the_plan = mx_plan(world, Submit("m1", "r1", to=("u1",)), Resend("m1", "u1", ("u2",), True))
    resent = the_plan.injections[1].content
    assert [name for name, _ in resent.headers[:5]] == [
        "Received", "Resent-From", "Resent-To", "Resent-Date", "Resent-Message-ID"]
    assert resent.values("Message-ID") == [NAMING.message_id("k1")]
    expected = the_plan.expected[1]
    assert expected.resent and expected.resent_message_id == resent.values("Resent-Message-ID")[0]
    # The resend is the story's second step: its id and time follow the first transaction's.
    assert resent.values("Resent-Message-ID") == [NAMING.resent_message_id("m1", 2)]
    assert resent.values("Resent-Date") == ["Mon, 30 Nov 2026 09:02:00 +0000"]
    assert the_plan.injections[1].id == NAMING.transaction_id(3)


def test_sending_again_is_a_second_path() -> None:
    """The very same message transmitted twice is owed twice (at least once, RFC 1047)."""
    world = World(("u1",), ("r1",))
    the_plan = mx_plan(world, Submit("m1", "r1", to=("u1",)), SendAgain("m1"))
    assert copies(the_plan) == {"u1": 2}
    first, second = the_plan.injections
    assert first.content.values("Message-ID") == second.content.values("Message-ID")
    assert first.id != second.id


def test_colliding_messages_are_distinct_paths() -> None:
    """Two different messages that share a Message-ID are both owed."""
    world = World(("u1",), ("r1", "r2"))
    the_plan = mx_plan(world, Submit("m1", "r1", to=("u1",)),
                       Submit("m2", "r2", to=("u1",), message_id="k1", body="b2"))
    assert copies(the_plan) == {"u1": 2}
    assert {e.message for e in the_plan.expected} == {"m1", "m2"}


def test_submission_role_relays_remote_copies_to_the_sink() -> None:
    """As submission server the SUT owes a relayed copy to each remote recipient."""
    world = World(("u1",), ("r1",), lists=(MailingList("L1", ("u1",)),))
    scenario = Scenario(world, (Submit("m1", "u1", to=("r1", "L1")),))
    the_plan = plan(scenario, NAMING, ("mx", "submission"))
    at_sink = sorted(e.mailbox for e in the_plan.expected if e.at_sink)
    assert at_sink == ["l1@lists.test", "r1@remote.example"]
    assert [t.entry for t in the_plan.injections] == ["submission", "mx"]
    assert copies(the_plan)["u1"] == 1


def test_sending_again_repeats_the_first_transmissions_path() -> None:
    """A retransmission over the same route names the first transmission as its path; a resend
    over another route and a new message do not."""
    world = World(("u1", "u2"), ("r1",), lists=(MailingList("L1", ("u1", "u2")),))
    the_plan = mx_plan(world, Submit("m1", "r1", to=("L1",), cc=("u1",)), SendAgain("m1"),
                       Resend("m1", "r1", ("u1",)), SendAgain("m1"))
    first = [e for e in the_plan.expected if e.retransmits is None]
    again = [e for e in the_plan.expected if e.retransmits is not None]
    assert [(NAMING.symbol_of(e.mailbox), e.route) for e in first] == [
        ("u1", ("r1's agent", "SUT")), ("u1", ("r1's agent", "list L1", "SUT")),
        ("u2", ("r1's agent", "list L1", "SUT")), ("u1", ("r1's agent", "SUT"))]
    assert [e.retransmits for e in again] == [e.path for e in first[:3]] * 2
    assert [e.distinct_path for e in again] == [(e.mailbox, e.path) for e in first[:3]] * 2
    assert len({e.distinct_path for e in the_plan.expected}) == 4


def test_blind_recipients_are_hidden_from_everyone_else() -> None:
    """r1 writes to u1 and blind-copies u2 and u3 in one transaction: each copy hides the other
    blind recipients, never the copy's own address."""
    world = World(("u1", "u2", "u3"), ("r1",))
    the_plan = mx_plan(world, Submit("m1", "r1", to=("u1",), bcc=("u2", "u3")))
    (tx,) = the_plan.injections
    assert tx.rcpts == (U1, U2, NAMING.address("u3"))
    hidden = {NAMING.symbol_of(e.mailbox): {NAMING.symbol_of(a) for a in e.hidden}
              for e in the_plan.expected}
    assert hidden == {"u1": {"u2", "u3"}, "u2": {"u3"}, "u3": {"u2"}}
    assert not any(e.may_show_bcc for e in the_plan.expected)


def test_nothing_is_hidden_from_the_author_or_by_naming_a_recipient_openly() -> None:
    """Blind-copying oneself or someone also in To hides nothing; the author's copy hides nothing."""
    world = World(("u1", "u2", "u3"), ("r1",))
    open_plan = mx_plan(world, Submit("m1", "u1", to=("u2",), bcc=("u1", "u2", "u3")))
    hidden = {NAMING.symbol_of(e.mailbox): {NAMING.symbol_of(a) for a in e.hidden}
              for e in open_plan.expected}
    assert hidden == {"u2": {"u3"}, "u1": set(), "u3": set()}


def test_addresses_leading_only_to_a_mailbox_are_its_own() -> None:
    """A forward or an alias reaching u1 alone is u1's own address; an alias shared with u2 is not."""
    world = World(("u1", "u2"), ("r1",), aliases=(("a1", ("u1",)), ("a2", ("u1", "u2"))),
                  forwards=(("f1", "u1"),))
    the_plan = mx_plan(world, Submit("m1", "r1", to=("u2",), bcc=("f1", "a1", "a2")))
    u2_copy = next(e for e in the_plan.expected if e.mailbox == U2 and e.route == ("r1's agent", "SUT"))
    assert {NAMING.symbol_of(a) for a in u2_copy.hidden} == {"f1", "a1"}
    u1_hidden = {e.route: {NAMING.symbol_of(a) for a in e.hidden} for e in the_plan.expected
                 if e.mailbox == U1}
    # Directly, u1 was reached by a1 and a2; by the forward, only a2 was someone else's.
    assert u1_hidden == {("r1's agent", "SUT"): set(), ("r1's agent", "forwarder f1", "SUT"): {"a2"}}


def test_a_list_copy_hides_the_blind_recipients_of_the_post() -> None:
    """A subscriber's copy of a post to a list that Bcc'd u2 must not show u2; a blind list
    reached by Bcc is known to its own subscribers."""
    world = World(("u1", "u2", "u3"), ("r1",), lists=(MailingList("L1", ("u3",)),))
    to_list = mx_plan(world, Submit("m1", "r1", to=("L1",), bcc=("u2",)))
    (via_list,) = [e for e in to_list.expected if e.mailbox == NAMING.address("u3")]
    assert via_list.hidden == {U2} and via_list.route == ("r1's agent", "list L1", "SUT")
    blind_list = mx_plan(world, Submit("m1", "r1", to=("u1",), bcc=("L1",)))
    hidden = {NAMING.symbol_of(e.mailbox): e.hidden for e in blind_list.expected}
    assert hidden == {"u1": {"l1@lists.test"}, "u3": frozenset()}


def test_bcc_treatments_shape_the_transactions() -> None:
    """Strip removes the field, empty keeps it empty, separate sends blind copies their own
    transaction that may show it; repeated recipients stay on the wire."""
    world = World(("u1", "u2"), ("r1",))

    def sent(mode: BccMode) -> list[tuple[tuple[str, ...], list[str]]]:
        the_plan = mx_plan(world, Submit("m1", "r1", to=("u1", "u1"), bcc=("u2", "u2"), bcc_mode=mode))
        return [(tuple(NAMING.symbol_of(r) for r in t.rcpts), t.content.values("Bcc"))
                for t in the_plan.injections]
    assert sent("strip") == [(("u1", "u1", "u2"), [])]
    assert sent("empty") == [(("u1", "u1", "u2"), [""])]
    assert sent("separate") == [(("u1", "u1"), []), (("u2",), [f"{U2}, {U2}"])]
    for mode, blind_copy_may_show in (("strip", False), ("empty", False), ("separate", True)):
        the_plan = mx_plan(world, Submit("m1", "r1", to=("u1",), bcc=("u2",), bcc_mode=mode))
        shows = {NAMING.symbol_of(e.mailbox): e.may_show_bcc for e in the_plan.expected}
        assert shows == {"u1": False, "u2": blind_copy_may_show}, mode


def test_dates_ids_and_trace_are_those_of_the_story() -> None:
    """Date d2 is an hour after d1; each hop's Received names its host and a fresh id."""
    world = World(("u1",), ("r1",), lists=(MailingList("L1", ("u1",)),), forwards=(("f1", "u1"),))
    the_plan = mx_plan(world, Submit("m1", "r1", to=("L1", "f1"), date="d2"))
    listed, forwarded = the_plan.injections
    assert listed.content.values("Date") == ["Mon, 30 Nov 2026 10:00:00 +0000"]
    def trace(tx: Transaction) -> list[str]:
        return [" ".join(t.split()) for t in tx.content.values("Received")]  # unfolded
    assert [t.split(" by ")[1].split()[0] for t in trace(listed)] == ["lists.test", "msa.upstream.test"]
    assert [t.split(" by ")[1].split()[0] for t in trace(forwarded)] == ["fwd.test", "msa.upstream.test"]
    ids = [t.split(" id ")[1].split(";")[0] for t in trace(listed) + trace(forwarded)]
    assert ids == [NAMING.transaction_id(n) for n in (2, 1, 4, 3)]
    assert listed.content.values("Received")[1].endswith("Mon, 30 Nov 2026 09:01:00 +0000")
    assert (listed.id, forwarded.id) == (NAMING.transaction_id(2), NAMING.transaction_id(4))
    (via_list,) = [e for e in the_plan.expected if e.path == listed.id]
    assert via_list.trace == tuple(listed.content.values("Received"))
    assert [e.return_path for e in the_plan.expected] == ["l1-bounces@lists.test", NAMING.address("r1")]


def test_list_without_list_id_and_resend_without_resent_message_id() -> None:
    """A list that adds no List-Id adds List-Post only; a resend without Resent-Message-ID says so."""
    world = World(("u1",), ("r1",), lists=(MailingList("L1", ("u1",), adds_list_id=False),))
    the_plan = mx_plan(world, Submit("m1", "r1", to=("L1",)), Resend("m1", "r1", ("u1",), False))
    listed, resent = the_plan.injections
    assert listed.content.values("List-Id") == [] and listed.content.values("List-Post") == [
        "<mailto:l1@lists.test>"]
    assert resent.content.values("Resent-Message-ID") == []
    copy = the_plan.expected[1]
    assert copy.resent and copy.resent_message_id is None
    assert not the_plan.expected[0].resent


def test_submission_role_hides_blind_recipients_and_lets_their_copies_show_bcc() -> None:
    """As submission server, the SUT owes u2 a copy that may show the Bcc (its own choice of
    treatment) and must hide u2 from u1 and from the relayed copy to r1."""
    world = World(("u1", "u2"), ("r1",))
    scenario = Scenario(world, (Submit("m1", "u1", to=("r1", "u1"), bcc=("u2",), bcc_mode="separate"),))
    the_plan = plan(scenario, NAMING, ("mx", "submission"))
    (tx,) = the_plan.injections
    assert tx.entry == "submission" and tx.rcpts == (NAMING.address("r1"), U1, U2)
    by_box = {NAMING.symbol_of(e.mailbox): e for e in the_plan.expected}
    assert (by_box["u2"].may_show_bcc, by_box["u1"].may_show_bcc, by_box["r1"].may_show_bcc) == (
        True, False, False)
    assert (by_box["r1"].hidden, by_box["u1"].hidden, by_box["u2"].hidden) == ({U2}, frozenset(), frozenset())
    assert by_box["r1"].at_sink and not by_box["u1"].at_sink
    assert by_box["u2"].requires == ((tx.id, frozenset({U2})),)


def test_submission_to_a_sut_without_aliases_names_the_final_users() -> None:
    """A submission SUT that expands no aliases is handed the alias's users, and owes each the
    copy its own address led to; one that expands them is handed the alias."""
    world = World(("u1", "u2"), aliases=(("a1", ("u1", "u2")),))
    scenario = Scenario(world, (Submit("m1", "u1", to=("a1",), cc=("u2",)),))
    for expands, rcpts in ((False, (U1, U2, U2)), (True, (NAMING.address("a1"), U2))):
        the_plan = plan(scenario, NAMING, ("mx", "submission"), sut_expands_aliases=expands)
        (tx,) = the_plan.injections
        assert tx.rcpts == rcpts, expands
        requires = {NAMING.symbol_of(e.mailbox): e.requires[0][1] for e in the_plan.expected}
        leading = {U1} if not expands else {NAMING.address("a1")}
        assert requires == {"u1": leading, "u2": {U2} if not expands else {U2, NAMING.address("a1")}}
