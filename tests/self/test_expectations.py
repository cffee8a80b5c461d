"""Expectations carry a category, keep it when rewritten, and the matrix shows it."""

from pathlib import Path

import pytest

from mailconform.specs.matrix import html, markdown
from mailconform.specs.report import Report, Result
from mailconform.suts.expectations import load, rewritten

SIEVE = """
[copy-per-path]
outcome = "failed"
category = "user-configured"
reason = "the owner's Sieve script discards duplicates"
"""


def test_category_is_loaded_and_defaults_to_violation(tmp_path: Path) -> None:
    """An entry's category is read; one without a category is a violation."""
    path = tmp_path / "e.toml"
    path.write_text(SIEVE + '\n[trace-prepend-only]\noutcome = "failed"\n')
    loaded = load(path)
    assert loaded["copy-per-path"].category == "user-configured"
    assert loaded["trace-prepend-only"].category == "violation"


def test_unknown_category_is_refused_with_its_file(tmp_path: Path) -> None:
    """A misspelt category stops with the file and the allowed names."""
    path = tmp_path / "e.toml"
    path.write_text(SIEVE.replace("user-configured", "users-choice"))
    with pytest.raises(ValueError, match=r"e\.toml: \[copy-per-path\] category must be one of violation"):
        load(path)


def test_rewriting_keeps_the_category(tmp_path: Path) -> None:
    """Rewriting an expectations file from a report keeps each kept entry's category."""
    path = tmp_path / "e.toml"
    path.write_text(SIEVE)
    report = Report("sieve", results={"copy-per-path": Result("failed")}).to_json()
    path.write_text(rewritten(report, load(path)))
    assert load(path)["copy-per-path"].category == "user-configured"


def test_matrix_shows_a_category_that_is_not_a_violation(tmp_path: Path) -> None:
    """A user-configured failure reads as such in both renderings; a violation stays plain FAIL."""
    path = tmp_path / "e.toml"
    path.write_text(SIEVE)
    sieve = Report("sieve", results={"copy-per-path": Result("failed")},
                   expected={k: {"outcome": e.outcome, "category": e.category}
                             for k, e in load(path).items()}).to_json()
    cyrus = Report("cyrus", results={"copy-per-path": Result("failed")}).to_json()
    page = markdown([sieve, cyrus], {})
    assert "| sieve |  | FAIL (user-configured) |" in page
    assert "| cyrus |  | FAIL |" in page
    assert "FAIL (user-configured)" in html([sieve], {})
