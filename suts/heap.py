"""The C heap of a long run: server threads allocate from the main malloc arena, and freed
memory goes back to the system (glibc only; elsewhere nothing).

By default glibc gives every thread that allocates its own malloc arena, so the server threads the
suite starts (the embedded SUT's, the sink's) each kept arenas of their own, full of sub-page holes
left by freed messages that no other thread could reuse and no trim could give back: over a long
run against the embedded SUT that left the suite's resident set growing by ~0.2 KiB per example
more than bare Hypothesis's (benchmarks/memory.py, 5,000 examples, paired rounds).  One arena for
every thread lets the main thread refill those holes; the GIL already serialises the threads, so
the arena's lock costs nothing measurable.  And glibc returns an arena's free memory only from its
top, above a threshold that it raises whenever a large block is freed anywhere in the process:
handing the whole free pages back every 100 plays (`malloc_trim`, well under a millisecond) is
what keeps the rest from piling up.
"""

from __future__ import annotations

import ctypes
import os
import platform
from functools import cache

TRIM_EVERY = 100
"""Plays between trims: the arenas grow by tens of KiB in that time, a trim costs ~0.3 ms."""
_M_ARENA_MAX = -8
"""glibc's mallopt parameter: the most arenas the process creates (malloc.h)."""


@cache
def _glibc() -> ctypes.CDLL | None:
    return ctypes.CDLL(None) if platform.libc_ver()[0] == "glibc" else None


def resident_mib() -> float:
    """This process's resident set size now, in MiB (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def give_back_freed_memory() -> None:
    """Return the whole free pages of every malloc arena to the system."""
    glibc = _glibc()
    if glibc is not None:
        glibc.malloc_trim(0)


def threads_share_one_arena() -> None:
    """Threads started from now on allocate from the arena the process already has, not one of
    their own each (a thread that has one keeps it)."""
    glibc = _glibc()
    if glibc is not None:
        glibc.mallopt(_M_ARENA_MAX, 1)
