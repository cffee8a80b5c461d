"""Expected outcomes per SUT, kept outside the tests, so a CI gate fails on changes.

An expectations file maps invariant ids to the outcome a SUT is known to have,
with the reason, a link and a category: `violation` (the server breaks the
rule), `user-configured` (a filter the mailbox owner chose, e.g. a Sieve
`discard` or a procmail recipe) or `conforming-refusal` (the server refuses
rather than loses, e.g. Courier dupfilter's 5xx at DATA).  Invariants it does
not name are expected to pass.

    mailconform expectations REPORT.json EXPECTATIONS.toml   # rewrite from a report
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from mailconform.specs.invariants import BY_ID

CATEGORIES = ("violation", "user-configured", "conforming-refusal")


@dataclass(frozen=True)
class Expectation:
    outcome: str
    reason: str = ""
    link: str = ""
    category: str = "violation"


def load(path: Path) -> dict[str, Expectation]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"{path}: {error}") from None
    expectations = {}
    for invariant, entry in data.items():
        if invariant not in BY_ID:
            raise ValueError(f"{path}: unknown invariant {invariant!r}")
        if entry.get("outcome") not in ("passed", "failed"):
            raise ValueError(f"{path}: [{invariant}] outcome must be \"passed\" or \"failed\"")
        category = entry.get("category", "violation")
        if category not in CATEGORIES:
            raise ValueError(f"{path}: [{invariant}] category must be one of {', '.join(CATEGORIES)}")
        expectations[invariant] = Expectation(entry["outcome"], entry.get("reason", ""),
                                              entry.get("link", ""), category)
    return expectations


def rewritten(report: dict[str, object], previous: dict[str, Expectation]) -> str:
    """The expectations file matching ``report``, keeping reasons for unchanged entries."""
    lines = [f"# Expected outcomes for {report['sut']}; invariants not named here are expected to pass.",
             "# Rewrite with: mailconform expectations REPORT.json THIS_FILE", ""]
    for entry in report["invariants"]:  # type: ignore[attr-defined]
        outcome = entry["outcome"]
        if outcome != "failed":  # an error is the SUT or suite breaking, never an expectation
            continue
        kept = previous.get(entry["id"])
        reason = kept.reason if kept and kept.outcome == "failed" else "TODO: explain"
        category = kept.category if kept else "violation"
        lines += [f"[{entry['id']}]", 'outcome = "failed"', f"category = {json.dumps(category)}",
                  f"reason = {json.dumps(reason)}"]
        if kept and kept.link:
            lines.append(f"link = {json.dumps(kept.link)}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # the older spelling of `mailconform expectations`
    import sys

    from mailconform.cli import main
    sys.exit(main(command="expectations", prog="python -m mailconform.suts.expectations"))
