"""Merge JSON reports into one conformance matrix, as Markdown and as self-contained HTML.

    python -m specs.matrix reports/*.json --markdown docs/matrix.md --html docs/matrix.html
"""

from __future__ import annotations

import argparse
import json
from html import escape
from pathlib import Path
from typing import Any

from specs.invariants import BY_ID, CATALOGUE

_MARK = {"passed": "pass", "failed": "FAIL", "error": "error", "skipped": "skip"}


def markdown(reports: list[dict[str, Any]], notes: dict[str, str]) -> str:
    ids = [inv.id for inv in CATALOGUE]
    lines = ["# Conformance matrix", "",
             "Rows are systems under test, columns invariants (RFC sections below).",
             "Regenerate with `python -m specs.matrix`; every failure's shrunk story follows.", "",
             "| SUT | transport | " + " | ".join(f"`{i}`" for i in ids) + " |",
             "|---|---|" + "---|" * len(ids)]
    for report in reports:
        cells = [_MARK[_outcomes(report).get(i, "skipped")] for i in ids]
        lines.append(f"| {report['sut']} | {report.get('transport', '')} | " + " | ".join(cells) + " |")
    lines += ["", "| invariant | strength | RFC | summary |", "|---|---|---|---|"]
    lines += [f"| `{inv.id}` | {inv.strength} | {', '.join(inv.rfc)} | {inv.summary} |" for inv in CATALOGUE]
    for report in reports:
        failures = [e for e in report["invariants"] if e["counterexample"]]
        if not failures and report["sut"] not in notes:
            continue
        lines += ["", f"## {report['sut']}", ""]
        if report["sut"] in notes:
            lines += [notes[report["sut"]], ""]
        for entry in failures:
            example = entry["counterexample"]
            lines += [f"### `{entry['id']}` — {', '.join(entry['rfc'])}", "",
                      f"{example['messages']} message(s), {example['transactions']} transaction(s)"
                      " into the SUT.", "", "```", example["text"], "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def html(reports: list[dict[str, Any]], notes: dict[str, str]) -> str:
    ids = [inv.id for inv in CATALOGUE]
    head = "".join(f'<th title="{escape(BY_ID[i].summary)}"><span>{escape(i)}</span></th>' for i in ids)
    rows = []
    for report in reports:
        outcomes = _outcomes(report)
        cells = "".join(
            f'<td class="{outcomes.get(i, "skipped")}">'
            f'{_link(report, i, _MARK[outcomes.get(i, "skipped")])}</td>' for i in ids)
        rows.append(f"<tr><th>{escape(report['sut'])}</th><td>{escape(report.get('transport', ''))}"
                    f"</td>{cells}</tr>")
    details = []
    for report in reports:
        note = notes.get(report["sut"])
        if note:
            details.append(f"<h2>{escape(report['sut'])}</h2><p>{escape(note)}</p>")
        for entry in report["invariants"]:
            example = entry["counterexample"]
            if example:
                details.append(
                    f'<details id="{_anchor(report, entry["id"])}" open><summary>'
                    f"<b>{escape(report['sut'])}</b> fails <code>{escape(entry['id'])}</code>"
                    f" ({escape(', '.join(entry['rfc']))}): {example['messages']} message(s),"
                    f" {example['transactions']} transaction(s)</summary>"
                    f"<pre>{escape(example['text'])}</pre></details>")
    legend = "".join(f"<tr><td><code>{escape(inv.id)}</code></td><td>{inv.strength}</td>"
                     f"<td>{escape(', '.join(inv.rfc))}</td><td>{escape(inv.rationale)}</td></tr>"
                     for inv in CATALOGUE)
    return _PAGE.format(head=head, rows="\n".join(rows), details="\n".join(details), legend=legend)


def _outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {entry["id"]: entry["outcome"] for entry in report["invariants"]}


def _anchor(report: dict[str, Any], invariant: str) -> str:
    return escape(f"{report['sut']}--{invariant}".replace(" ", "-"))


def _link(report: dict[str, Any], invariant: str, text: str) -> str:
    entry = next(e for e in report["invariants"] if e["id"] == invariant)
    return f'<a href="#{_anchor(report, invariant)}">{text}</a>' if entry["counterexample"] else text


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mailconform conformance matrix</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 80em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: .35em .6em; text-align: center; }}
thead th {{ height: 11em; vertical-align: bottom; white-space: nowrap; }}
thead th span {{ writing-mode: vertical-rl; transform: rotate(180deg); }}
tbody th {{ text-align: left; }}
td.passed {{ background: #dff3df; }} td.failed {{ background: #f8d4d4; font-weight: bold; }}
td.error {{ background: #fbe7b5; }} td.skipped {{ color: #888; }}
td a {{ color: inherit; }}
details {{ margin: .8em 0; border-left: 4px solid #d66; padding-left: .8em; }}
pre {{ background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: 13px; }}
.legend td {{ text-align: left; vertical-align: top; }}
</style></head><body>
<h1>mailconform conformance matrix</h1>
<p>Rows are systems under test, columns are invariants; a failing cell links to its shrunk story.</p>
<table><thead><tr><th>SUT</th><th>transport</th>{head}</tr></thead>
<tbody>
{rows}
</tbody></table>
<h2>Counterexamples</h2>
{details}
<h2>Invariants</h2>
<table class="legend"><tr><th>id</th><th>strength</th><th>RFC</th><th>rationale</th></tr>{legend}</table>
</body></html>
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="--report-json files, one per SUT")
    parser.add_argument("--markdown", type=Path, required=True)
    parser.add_argument("--html", type=Path, required=True)
    parser.add_argument("--notes", type=Path, help="a JSON object: SUT name -> a note shown with it")
    args = parser.parse_args()
    reports = [json.loads(path.read_text()) for path in args.reports]
    notes = json.loads(args.notes.read_text()) if args.notes else {}
    args.markdown.write_text(markdown(reports, notes))
    args.html.write_text(html(reports, notes))
    print(f"wrote {args.markdown} and {args.html} ({len(reports)} SUTs)")


if __name__ == "__main__":
    main()
