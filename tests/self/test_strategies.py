"""The scenario strategy reaches the overlaps that matter, and scenarios are well formed."""

from hypothesis import find, given, settings

from mailconform.specs.model import Plan, Role, plan
from mailconform.specs.naming import Naming
from mailconform.specs.scenario import Resend, Scenario, SendAgain, Submit
from mailconform.strategies import scenarios

_SEARCH = settings(max_examples=500, database=None, derandomize=True)


def _is_seed_story(scenario: Scenario) -> bool:
    first = scenario.events[0]
    assert isinstance(first, Submit)
    own_lists = [lst.name for lst in scenario.world.lists if first.sender in lst.subscribers]
    return first.sender in first.bcc and any(name in first.to for name in own_lists)


def test_seed_story_is_generated() -> None:
    """A poster who Bccs himself on a post to his own list turns up within 500 examples."""
    assert _is_seed_story(find(scenarios(), _is_seed_story, settings=_SEARCH))


def test_message_id_collisions_are_generated() -> None:
    """Two different messages sharing a Message-ID turn up within 500 examples."""
    def collides(scenario: Scenario) -> bool:
        keys = [e.message_id for e in scenario.events if isinstance(e, Submit)]
        return len(keys) > len(set(keys))
    assert collides(find(scenarios(), collides, settings=_SEARCH))


@given(scenario=scenarios())
def test_events_refer_to_the_world(scenario: Scenario) -> None:
    """Every symbol an event uses exists in the world, and later events name earlier messages."""
    world = scenario.world
    known = set(world.local_users + world.remote_users) | {lst.name for lst in world.lists}
    known |= {a for a, _ in world.aliases} | {f for f, _ in world.forwards}
    submitted: set[str] = set()
    for event in scenario.events:
        if isinstance(event, Submit):
            assert {event.sender, *event.to, *event.cc, *event.bcc} <= known
            assert event.to or event.cc or event.bcc
            submitted.add(event.message)
        elif isinstance(event, Resend):
            assert event.message in submitted and set(event.to) <= known and event.to
        else:
            assert isinstance(event, SendAgain) and event.message in submitted


@given(scenario=scenarios())
def test_story_names_every_event(scenario: Scenario) -> None:
    """The readable story gives each event a line naming who does what to which message and whom."""
    lines = scenario.story().splitlines()
    event_lines = lines[len(lines) - len(scenario.events):]
    for event, line in zip(scenario.events, event_lines, strict=True):
        if isinstance(event, Submit):
            assert line.startswith(f"{event.sender} sends {event.message} (Message-ID {event.message_id},")
            assert f"Date {event.date}, body {event.body})" in line
            for field, symbols in (("to", event.to), ("cc", event.cc), ("bcc", event.bcc)):
                if symbols:
                    assert f"{field} {', '.join(symbols)}" in line
        elif isinstance(event, Resend):
            rid = "with" if event.with_resent_message_id else "without"
            assert line == (f"{event.resender} resends {event.message} to {', '.join(event.to)}"
                            f" ({rid} Resent-Message-ID)")
        else:
            assert line == f"{event.message} is sent again"
    assert lines[0] == "local users: " + ", ".join(scenario.world.local_users)


def _plans(scenario: Scenario, roles: tuple[Role, ...]) -> Plan:
    return plan(scenario, Naming("n0"), roles)


def test_a_recipient_repeated_on_the_wire_is_generated() -> None:
    """A transaction naming the same recipient twice turns up within 500 examples."""
    def repeats(scenario: Scenario) -> bool:
        return any(len(tx.rcpts) > len(set(tx.rcpts)) for tx in _plans(scenario, ("mx",)).injections)
    assert repeats(find(scenarios(), repeats, settings=_SEARCH))


def test_an_alias_and_its_target_in_one_transaction_are_generated() -> None:
    """A transaction naming a user and an alias that reaches him turns up within 500 examples."""
    def overlaps(scenario: Scenario) -> bool:
        the_plan = _plans(scenario, ("mx",))
        return any(len(e.requires[-1][1]) > 1 for e in the_plan.expected)
    assert overlaps(find(scenarios(), overlaps, settings=_SEARCH))


def test_mx_only_sut_is_given_blind_recipients_in_one_transaction() -> None:
    """An mx-only SUT gets one transaction whose recipients include a blind one hidden from another."""
    def hides(scenario: Scenario) -> bool:
        the_plan = _plans(scenario, ("mx",))
        for tx in the_plan.injections:
            copies = [e for e in the_plan.expected if e.path == tx.id]
            if any(e.hidden & set(tx.rcpts) for e in copies):
                return True
        return False
    assert hides(find(scenarios(), hides, settings=_SEARCH))


@settings(max_examples=300, database=None)
@given(scenarios())
def test_strategies_are_kept_per_pool_size_not_per_world(scenario: Scenario) -> None:
    """However many different worlds are drawn, the strategies kept for drawing from their pools
    stay few (one per pool size and shape), so a long run's memory does not grow with them."""
    from mailconform.strategies.scenarios import _indices
    assert _indices.cache_info().currsize <= 37  # 3 + 7 + 2 * 9 + 9: every shape and pool size there is
