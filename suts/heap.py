"""Freed C-heap memory given back to the system during a long run (glibc only; elsewhere nothing).

Every server thread the suite starts (the embedded SUT's, the sink's) gets a glibc malloc arena of
its own, and glibc returns a thread arena's free memory only from its top, above a threshold that
it raises whenever a large block is freed anywhere in the process.  Over a long run those arenas
keep growing with memory that is free but held: about 0.6 KiB more per example than bare
Hypothesis against the embedded SUT (benchmarks/memory.py).  `malloc_trim` hands the free pages
of every arena back at once, in well under a millisecond.
"""

from __future__ import annotations

import ctypes
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


def give_back_freed_memory() -> None:
    """Return the whole free pages of every malloc arena to the system."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
