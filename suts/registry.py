"""Resolve the user's `--sut` / `--sut-config` choice into a system under test."""

from __future__ import annotations

from pathlib import Path

from suts.base import SystemUnderTest
from suts.inprocess import InProcessSUT
from suts.policies import POLICY_NAMES

SUT_NAMES = ("reference", "model:<policy>")


def resolve(name: str, config: Path | None = None) -> SystemUnderTest:
    kind, _, policy_name = name.partition(":")
    if kind == "reference" and not policy_name:
        return InProcessSUT()
    if kind == "model" and policy_name:
        return InProcessSUT(policy_name)
    raise ValueError(f"unknown SUT {name!r}: use one of {', '.join(SUT_NAMES)};"
                     f" policies: {', '.join(POLICY_NAMES)}")
