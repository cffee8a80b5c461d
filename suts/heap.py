"""Freed C-heap memory given back to the system during a long run (glibc only; elsewhere nothing).

Every server thread the suite starts (the embedded SUT's, the sink's) gets a glibc malloc arena of
its own, and glibc returns a thread arena's free memory only from its top, above a threshold that
it raises whenever a large block is freed anywhere in the process.  Over a long run against the
embedded SUT those arenas held freed memory that left the suite's resident set growing 0.74-0.93
KiB per example more than bare Hypothesis's; handing the whole free pages of every arena back
every 100 plays (`malloc_trim`, well under a millisecond) brings that to 0.33-0.47 KiB
(benchmarks/memory.py, 5,000 examples, paired rounds).
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Callable
from functools import cache

TRIM_EVERY = 100
"""Plays between trims: the arenas grow by tens of KiB in that time, a trim costs ~0.3 ms."""


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    if platform.libc_ver()[0] != "glibc":
        return None
    trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    return trim


def resident_mib() -> float:
    """This process's resident set size now, in MiB (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def give_back_freed_memory() -> None:
    """Return the whole free pages of every malloc arena to the system."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
