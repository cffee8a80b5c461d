"""What a run remembers of each scenario it judged: the invariants it passed.

The search judges every scenario it draws, and the properties meet those scenarios again: a
remembered verdict spares them a play.  A long run judges hundreds of thousands of scenarios, so
each costs a few bytes, not a Python object: scenarios are known by their 64-bit hash (a
collision among a run's scenarios is negligible) in one open-addressing table of machine
integers, beside a small id into the verdicts met so far.  A run meets a handful of distinct
verdicts (sets of invariants passed), each shared by thousands of scenarios.  What a scenario
broke is not remembered here: a violation is told from its own play, which the judge keeps
while it can and otherwise plays again.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable

Verdict = frozenset[str]
"""The invariants a scenario passed."""
UNJUDGED: Verdict = frozenset()

_EMPTY = 0
"""A free slot.  A scenario whose hash is 0 is filed under -1, which Python never gives as a hash."""
_SLOT_BYTES = 8 + 4
"""A 64-bit hash and a 32-bit verdict id."""


class Verdicts:
    """Scenario -> its `Verdict`, `UNJUDGED` until one is given; kept for the whole run.

    Unbounded on purpose: at 12 bytes a slot, a third to two thirds full, a scenario costs 18-36
    bytes, under 0.25% of the ~15 KiB Hypothesis itself keeps per example (benchmarks/memory.py),
    and forgetting would make a property play again a scenario the search judged."""

    def __init__(self, capacity: int = 1024) -> None:
        if capacity < 1 or capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of two, not {capacity}")
        self._hashes = array("q", bytes(8 * capacity))
        self._ids = array("I", bytes(4 * capacity))
        """Index into `_kinds`; 0 (`UNJUDGED`) in a free slot."""
        self._kinds: list[Verdict] = [UNJUDGED]
        self._id_of: dict[Verdict, int] = {UNJUDGED: 0}
        self._filled = 0

    def __len__(self) -> int:
        return self._filled

    @property
    def distinct(self) -> int:
        """Distinct verdicts given so far."""
        return len(self._kinds) - 1

    @property
    def table_bytes(self) -> int:
        """What the table's slots take: the store's whole per-scenario cost."""
        return len(self._hashes) * _SLOT_BYTES

    def __getitem__(self, scenario: Hashable) -> Verdict:
        return self._kinds[self._ids[self._slot(_hashed(scenario))]]

    def __setitem__(self, scenario: Hashable, verdict: Verdict) -> None:
        key = _hashed(scenario)
        slot = self._slot(key)
        if self._hashes[slot] == _EMPTY:
            self._hashes[slot] = key
            self._filled += 1
        self._ids[slot] = self._id(verdict)
        if 3 * self._filled > 2 * len(self._hashes):
            self._grow()

    def _id(self, verdict: Verdict) -> int:
        known = self._id_of.get(verdict)
        if known is None:
            known = self._id_of[verdict] = len(self._kinds)
            self._kinds.append(verdict)
        return known

    def _slot(self, key: int) -> int:
        """The slot holding ``key``, or the free slot where it belongs.  Probes as CPython's own
        dicts do, so that hashes alike in their low bits still spread over the table."""
        mask = len(self._hashes) - 1
        perturb = key & 0xFFFF_FFFF_FFFF_FFFF
        slot = perturb & mask
        while (held := self._hashes[slot]) != key and held != _EMPTY:
            perturb >>= 5
            slot = (5 * slot + 1 + perturb) & mask
        return slot

    def _grow(self) -> None:
        hashes, ids = self._hashes, self._ids
        self._hashes = array("q", bytes(16 * len(hashes)))
        self._ids = array("I", bytes(8 * len(ids)))
        for key, verdict_id in zip(hashes, ids, strict=True):
            if key != _EMPTY:
                slot = self._slot(key)
                self._hashes[slot], self._ids[slot] = key, verdict_id


def _hashed(scenario: Hashable) -> int:
    return hash(scenario) or -1
