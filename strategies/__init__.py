"""Hypothesis strategies that build symbolic delivery scenarios."""

from strategies.scenarios import scenarios, worlds

__all__ = ["scenarios", "worlds"]
