"""Hypothesis strategies for symbolic delivery scenarios.

Worlds are small on purpose: with one to three local users, a list or two and
short recipient lists, the overlaps that break duplicate-suppressing stores
(a poster on his own list, Bcc to oneself, a user reached by a list and an
alias) come up in a good share of examples rather than once in a thousand.
Symbols are drawn with `sampled_from`, which shrinks toward the first one, so a
failure shrinks to u1, L1, m1.
"""

from __future__ import annotations

from functools import cache

from hypothesis import strategies as st

from mailconform.specs.scenario import BccMode, Event, MailingList, Resend, Scenario, SendAgain, Submit, World

BCC_MODES: tuple[BccMode, ...] = ("strip", "empty", "separate")
"""The two that send one transaction for every recipient first."""
DATES = ("d1", "d2")
BODIES = ("b1", "b2")


def _symbols(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{n}" for n in range(1, count + 1))


# Strategies are built once per pool size, not per draw (building and validating a strategy
# costs more than drawing from it), nor per pool: worlds make hundreds of distinct pools, and
# a strategy kept for each would grow memory for thousands of examples.  Drawing an index is
# the same choice, shrinking the same way, as `sampled_from` drawing from the pool itself.
@cache
def _indices(pool_size: int, max_size: int, min_size: int, unique: bool) -> st.SearchStrategy[list[int]]:
    return st.lists(st.sampled_from(range(pool_size)), min_size=min_size, max_size=max_size, unique=unique)


def _some(draw: st.DrawFn, pool: tuple[str, ...], max_size: int, min_size: int = 0,
          unique: bool = False) -> tuple[str, ...]:
    return tuple(pool[i] for i in draw(_indices(len(pool), max_size, min_size, unique)))


_ADDS_LIST_ID = st.booleans().map(lambda b: not b)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    """A world around the SUT's domain: local and remote users, lists, aliases, forwards."""
    local = _symbols("u", draw(st.integers(1, 3)))
    remote = _symbols("r", draw(st.integers(0, 2)))
    aliases = tuple((a, _some(draw, local, 2, min_size=1, unique=True))
                    for a in _symbols("a", draw(st.integers(0, 1))))
    forwards = tuple((f, draw(st.sampled_from(local))) for f in _symbols("f", draw(st.integers(0, 1))))
    members = local + remote + tuple(a for a, _ in aliases) + tuple(f for f, _ in forwards)
    lists = tuple(
        MailingList(name, _some(draw, members, 3, min_size=1, unique=True), draw(_ADDS_LIST_ID))
        for name in _symbols("L", draw(st.integers(0, 2))))
    return World(local, remote, lists, aliases, forwards)


_WORLDS = worlds()
"""Built once: a composite builds a new strategy object on every call."""


def _addressable(world: World) -> tuple[str, ...]:
    return (world.local_users + tuple(lst.name for lst in world.lists) + world.remote_users
            + tuple(a for a, _ in world.aliases) + tuple(f for f, _ in world.forwards))


def _submit(draw: st.DrawFn, world: World, message: str, senders: tuple[str, ...],
            key: str) -> Submit:
    pool = _addressable(world)
    sender = draw(st.sampled_from(senders))
    others = tuple(u for u in world.local_users if u != sender)
    if len(others) > 1 and draw(st.sampled_from((False, True))):
        # One local user in To, another in Bcc, in one transaction (as an upstream relay carries
        # them): even an mx-only SUT is told of a blind recipient it must keep to itself.
        seen = draw(st.sampled_from(others))
        blind = draw(st.sampled_from(tuple(u for u in others if u != seen)))
        return Submit(message, sender, (seen,), (), (blind,), draw(st.sampled_from(BCC_MODES[:2])), key,
                      draw(st.sampled_from(DATES)), draw(st.sampled_from(BODIES)))
    to, cc, bcc = _some(draw, pool, 3), _some(draw, pool, 2), _some(draw, pool, 2)
    if not (to or cc or bcc):
        to = (draw(st.sampled_from(pool)),)
    return Submit(message, sender, to, cc, bcc, draw(st.sampled_from(BCC_MODES)), key,
                  draw(st.sampled_from(DATES)), draw(st.sampled_from(BODIES)))


SEED_STORY = Scenario(World(("u1",), lists=(MailingList("L1", ("u1",)),)),
                      (Submit("m1", "u1", to=("L1",), bcc=("u1",)),))
"""The report that started the project: a poster on his own list who Bccs himself."""


@st.composite
def scenarios(draw: st.DrawFn, max_events: int = 4) -> Scenario:
    """A world and a short story of submissions, resends and retransmissions in it."""
    world = draw(_WORLDS)
    senders = world.local_users + world.remote_users
    events: list[Event] = [_submit(draw, world, "m1", senders, "k1")]
    for _ in range(draw(st.integers(0, max_events - 1))):
        submitted = tuple(e.message for e in events if isinstance(e, Submit))
        kind = draw(st.sampled_from(("again", "resend", "submit")))
        if kind == "again":
            events.append(SendAgain(draw(st.sampled_from(submitted))))
        elif kind == "resend":
            events.append(Resend(draw(st.sampled_from(submitted)), draw(st.sampled_from(senders)),
                                 _some(draw, _addressable(world), 2, min_size=1), draw(st.booleans())))
        else:
            # A new message has its own Message-ID, unless it collides with the first one's
            # (a broken originator): that is the less simple choice, so shrinking avoids it.
            n = len(submitted) + 1
            events.append(_submit(draw, world, f"m{n}", senders, "k1" if draw(st.booleans()) else f"k{n}"))
    return Scenario(world, tuple(events))
