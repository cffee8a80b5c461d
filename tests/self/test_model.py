"""Hand-worked cases for the reference delivery model."""

from collections import Counter

from mailconform.specs.model import Plan, plan
from mailconform.specs.naming import Naming
from mailconform.specs.scenario import MailingList, Resend, Scenario, SendAgain, Submit, World

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
