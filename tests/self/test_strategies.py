"""The scenario strategy reaches the overlaps that matter, and scenarios are well formed."""

from hypothesis import find, given, settings
from hypothesis import strategies as st

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


@given(st.data())
def test_story_names_every_event(data: st.DataObject) -> None:
    """The readable story has one line per event after the world's lines."""
    scenario = data.draw(scenarios())
    lines = scenario.story().splitlines()
    assert len(lines) >= len(scenario.events) + 1
    assert lines[-len(scenario.events):][0].startswith(scenario.events[0].sender)  # type: ignore[union-attr]
