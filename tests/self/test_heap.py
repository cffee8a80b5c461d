"""Freed C-heap memory is given back to the system on glibc (suts/heap.py)."""

from __future__ import annotations

import platform
import threading

import pytest

from mailconform.specs.scenario import Scenario, Submit, World
from mailconform.suts import base, heap
from mailconform.suts.inprocess import InProcessSUT

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")


def test_memory_a_thread_freed_goes_back_to_the_system() -> None:
    """Half of 32 MiB a thread allocated and freed, held by its arena, leaves the resident set."""
    kept: list[list[bytes]] = []

    def allocate_and_free_half() -> None:
        blocks = [b"x" * (16 * 1024) for _ in range(2048)]  # above pymalloc's limit: glibc's own
        del blocks[1::2]  # every other block stays, so glibc cannot shrink the arena itself
        kept.append(blocks)
    worker = threading.Thread(target=allocate_and_free_half)
    worker.start()
    worker.join()
    before = heap.resident_mib()
    heap.give_back_freed_memory()
    assert heap.resident_mib() < before - 8


def test_a_player_gives_memory_back_every_so_many_plays(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long run trims once per TRIM_EVERY plays, not per play and not never."""
    trims: list[int] = []
    player = base.Player(InProcessSUT())
    monkeypatch.setattr(base, "give_back_freed_memory", lambda: trims.append(player.plays))
    for n in range(2 * heap.TRIM_EVERY + 1):  # distinct scenarios: each one played
        player.run(Scenario(World(("u1",)), (Submit("m1", "u1", to=("u1",), message_id=f"k{n}"),)))
    assert trims == [heap.TRIM_EVERY, 2 * heap.TRIM_EVERY]
