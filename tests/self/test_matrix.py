"""The conformance matrix shows documented-only systems apart from measured ones."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mailconform.specs.invariants import CATALOGUE
from mailconform.specs.matrix import PaperRow, html, markdown, paper_rows

PAPER_FILE = Path(__file__).resolve().parents[2] / "suts" / "real" / "paper.toml"
ROW = PaperRow("Example Cloud", "copy-per-path", "drops a second copy with a known Message-ID.",
               "a hosted service", ("https://docs.example/dedup",))
REPORT = {"sut": "measured", "transport": "smtp",
          "invariants": [{"id": inv.id, "outcome": "passed", "rfc": [], "counterexample": None}
                         for inv in CATALOGUE]}


def test_paper_row_is_marked_documented_never_measured() -> None:
    """A documented system's row says 'documented, not run' and carries no pass or FAIL cell."""
    text = markdown([REPORT], {}, [ROW])
    (line,) = [line for line in text.splitlines() if line.startswith("| Example Cloud ")]
    assert "documented, not run" in line and "*documented*" in line
    assert "pass" not in line and "FAIL" not in line
    assert "https://docs.example/dedup" in text
    page = html([REPORT], {}, [ROW])
    assert 'class="documented"' in page and "https://docs.example/dedup" in page


def test_project_paper_rows_load_and_name_known_invariants() -> None:
    """suts/real/paper.toml loads; each row has a rule and at least one source link."""
    rows = paper_rows(tomllib.loads(PAPER_FILE.read_text()))
    assert {row.system for row in rows} >= {"Stalwart", "Gmail", "Fastmail"}
    assert all(row.rule and row.links and row.links[0].startswith("https://") for row in rows)


def test_paper_row_with_unknown_invariant_is_refused() -> None:
    """A typo in an invariant id is an error, not a silently empty row."""
    with pytest.raises(ValueError, match="unknown invariants"):
        paper_rows({"x": {"system": "X", "invariant": "no-such", "rule": "r", "not_run": "n", "links": []}})
