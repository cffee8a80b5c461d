"""Resolve the user's `--sut` / `--sut-config` choice into a system under test."""

from __future__ import annotations

import os
from pathlib import Path

from mailconform.suts.base import SystemUnderTest
from mailconform.suts.config import load
from mailconform.suts.embedded import EmbeddedSUT
from mailconform.suts.inprocess import InProcessSUT
from mailconform.suts.network import NetworkSUT
from mailconform.suts.policies import POLICY_NAMES, policy

SUT_NAMES = ("embedded[:<policy>]", "embedded-lmtp[:<policy>]", "reference", "model:<policy>")


def resolve(name: str, config: Path | None = None) -> SystemUnderTest:
    """The SUT a user named; `config` (a --sut-config file) wins over `name`."""
    if config is not None:
        return NetworkSUT(load(config, dict(os.environ)))
    kind, _, policy_name = name.partition(":")
    if policy_name:
        policy(policy_name)  # an unknown policy fails here, with the list of known ones
    if kind == "reference" and not policy_name:
        return InProcessSUT()
    if kind == "model" and policy_name:
        return InProcessSUT(policy_name)
    if kind in ("embedded", "embedded-lmtp"):
        return EmbeddedSUT(policy_name or "reference", "smtp" if kind == "embedded" else "lmtp")
    raise ValueError(f"unknown SUT {name!r}: use one of {', '.join(SUT_NAMES)};"
                     f" policies: {', '.join(POLICY_NAMES)}")
