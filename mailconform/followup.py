"""After an invariant fails: diagnose a lost copy's duplicate rule, play the impact stories,
write the bug-report bundle (pytest options --diagnose, --bundle, --diagnose-gaps)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mailconform import bundle
from mailconform.specs.diagnosis import Diagnosis
from mailconform.specs.explain import InvariantViolation
from mailconform.specs.impact import ImpactRow, table
from mailconform.suts.base import SutError, SystemUnderTest
from mailconform.suts.diagnose import GAPS, diagnose, impact
from mailconform.suts.wire import MailboxError, ProtocolError

LOSS = "copy-per-path"
"""The invariant whose failures are lost copies: only they get a diagnosis and an impact table."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mailconform")
    group.addoption("--bundle", type=Path, default=None, metavar="DIR",
                    help="write a bug-report bundle for every failed invariant to DIR/<sut>/<invariant>/")
    group.addoption("--diagnose-gaps", type=_gaps, default=GAPS, metavar="S,S",
                    help="pauses (seconds) tried between two copies when diagnosing a lost copy's"
                         f" duplicate rule (default: {','.join(f'{g:g}' for g in GAPS)}; 0: none)")
    group.addoption("--diagnose", action="store_true",
                    help="after a lost copy (copy-per-path), measure the store's duplicate rule and play"
                         " the impact stories (implied by --bundle)")


def _gaps(text: str) -> tuple[float, ...]:
    try:
        gaps = tuple(float(g) for g in text.split(",") if float(g) > 0)
    except ValueError:
        raise pytest.UsageError(f"--diagnose-gaps: expected seconds like 3,30, got {text!r}") from None
    return tuple(sorted(gaps))


def follow_up(config: pytest.Config, sut: SystemUnderTest, violation: InvariantViolation,
              progress: Callable[[str], None] | None, deadline: float | None = None) -> dict[str, Any]:
    """The violation's counterexample, with the diagnosis and impact table of a lost copy, and
    the bundle written if asked for; the experiments end at the run's ``deadline`` (time.time())."""
    counterexample = dict(violation.counterexample)
    found: Diagnosis | None = None
    rows: tuple[ImpactRow, ...] = ()
    root: Path | None = config.getoption("--bundle")
    if violation.invariant.id == LOSS and (config.getoption("--diagnose") or root is not None):
        started = time.monotonic()
        try:
            found = diagnose(sut, violation.plan, violation.observation,
                             gaps=config.getoption("--diagnose-gaps"), progress=progress,
                             deadline=deadline)
            rows = impact(sut, progress, deadline)
            if progress:
                progress(f"mailconform: diagnosis and impact stories on {sut.name} took"
                         f" {time.monotonic() - started:.1f} s")
        except (SutError, ProtocolError, MailboxError, OSError) as error:
            counterexample["text"] += f"\n\nThe follow-up experiments could not be run: {error}"
        else:
            counterexample["diagnosis"] = found.to_json()
            counterexample["impact"] = [row.to_json() for row in rows]
            counterexample["text"] += "\n\n" + "\n".join(
                [*found.text(), "", "Where else it loses mail (canonical stories played after the"
                 " diagnosis):", *(f"  {line}" for line in table(rows))])
    if root is not None:
        folder = bundle.write(root, violation, found, rows)
        counterexample["bundle"] = str(folder)
        counterexample["text"] += f"\n\nBug-report bundle: {folder}"
    return counterexample
