"""How counts read in the suite's messages: "1 copy", "2 copies", never "1 copies"."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and its noun, singular for exactly one; ``plural`` where adding "s" is wrong."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
