"""The verdict store: every verdict found again after many inserts, a few bytes per scenario, and
the judge playing a scenario once however often it meets it."""

from __future__ import annotations

from mailconform.run import _BROKEN_PLAYS, Judge, Tally
from mailconform.specs.invariants import BY_ID
from mailconform.specs.scenario import Scenario, Submit, World
from mailconform.suts.base import Player
from mailconform.suts.inprocess import InProcessSUT
from mailconform.verdicts import UNJUDGED, Verdicts

PASSED = frozenset({"copy-per-path"})
BROKEN = frozenset({"message-id-preserved"})  # and copy-per-path broken


def story(n: int) -> Scenario:
    """A distinct one-message story per ``n``, alike in every other way."""
    return Scenario(World(("u1", "u2")), (Submit("m1", "u1", to=("u2",), message_id=f"k{n}"),))


def test_every_verdict_is_found_after_many_inserts_and_resizes() -> None:
    """50,000 scenarios through nine doublings: each one's own verdict, and no verdict for others."""
    verdicts = Verdicts(capacity=128)
    for n in range(50_000):
        verdicts[("scenario", n)] = PASSED if n % 3 else BROKEN
    assert len(verdicts) == 50_000
    assert all(verdicts[("scenario", n)] == (PASSED if n % 3 else BROKEN) for n in range(50_000))
    assert all(verdicts[("unseen", n)] is UNJUDGED for n in range(5_000))


def test_hashes_alike_in_their_low_bits_stay_apart() -> None:
    """Keys whose hashes share their low 40 bits (all one slot before probing), and the key whose
    hash is the free-slot marker, each keep their own verdict."""
    verdicts = Verdicts(capacity=8)
    keys = [0] + [n << 40 for n in range(1, 2_000)]
    assert len({hash(k) & (2**40 - 1) for k in keys}) == 1
    for n, key in enumerate(keys):
        verdicts[key] = frozenset({f"i{n % 5}"})
    assert [verdicts[key] for key in keys] == [frozenset({f"i{n % 5}"}) for n in range(len(keys))]
    assert verdicts[1 << 39] is UNJUDGED


def test_a_verdict_given_again_replaces_the_first_and_is_stored_once() -> None:
    """Judging a scenario again overwrites its verdict in place; equal verdicts share one entry."""
    verdicts = Verdicts()
    for n in range(10_000):
        verdicts[n] = PASSED
    verdicts[7] = BROKEN
    assert verdicts[7] == BROKEN and verdicts[8] == PASSED and len(verdicts) == 10_000
    assert verdicts.distinct == 2


def test_a_scenario_costs_a_few_bytes() -> None:
    """The whole table, however it grew, is at most 36 bytes per scenario remembered (a dict of
    tuples took about 134)."""
    verdicts = Verdicts()
    for n in range(100_000):
        verdicts[story(n)] = PASSED
    assert verdicts.table_bytes <= 36 * 100_000


def test_a_verdict_spares_the_scenario_a_second_play() -> None:
    """A scenario judged for every invariant, long gone from the player's recent plays, is judged
    again without a play: its verdicts stand."""
    judge = Judge(Player(InProcessSUT(), capacity=1))
    for invariant_id in BY_ID:
        assert judge.judged(story(0), invariant_id) is None
    for n in range(1, 20):
        judge.judged(story(n), "copy-per-path")
    plays = judge.player.plays
    judge.tallies = {invariant_id: Tally(counting=False) for invariant_id in BY_ID}
    assert all(judge.judged(story(0), invariant_id) is None for invariant_id in BY_ID)
    assert judge.player.plays == plays == 20


def test_a_broken_play_is_kept_and_told_from_its_own_play() -> None:
    """A scenario that broke an invariant shows the violations of the play that broke it, without
    a new play, until newer broken plays push it out; then it is played and judged afresh."""
    judge = Judge(Player(InProcessSUT("dedup-message-id"), capacity=1))
    twice = Scenario(World(("u1", "u2", "u3")), (Submit("m1", "u1", to=("u2",), message_id="k"),
                                                 Submit("m2", "u1", to=("u2",), message_id="k")))
    first = judge.judged(twice, "copy-per-path")
    assert first is not None
    judge.judged(story(0), "copy-per-path")  # the player's one recent play is another's now
    plays = judge.player.plays
    again = judge.judged(twice, "copy-per-path")
    assert again is not None and judge.player.plays == plays
    assert again.observation is first.observation and again.violations == first.violations
    for n in range(_BROKEN_PLAYS):
        other = Scenario(twice.world, tuple(Submit(m, "u1", to=("u2",), message_id=f"k{n}")
                                            for m in ("m1", "m2")))
        assert judge.judged(other, "copy-per-path") is not None
    plays = judge.player.plays
    afresh = judge.judged(twice, "copy-per-path")
    assert afresh is not None and judge.player.plays == plays + 1
    assert afresh.observation is not first.observation
