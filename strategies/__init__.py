"""Hypothesis strategies that build symbolic delivery scenarios."""

from mailconform.strategies.scenarios import SEED_STORY, scenarios, worlds

__all__ = ["SEED_STORY", "scenarios", "worlds"]
