"""Merge JSON reports into one conformance matrix, as Markdown and as self-contained HTML.

Pure rendering; `mailconform matrix` (mailconform/cli.py) reads the reports and writes the pages.

Systems that cannot be run (`--paper`, see suts/real/paper.toml) get rows of their
own, marked "documented, not run": their documented rule, never a measured cell.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from mailconform.specs.invariants import BY_ID, CATALOGUE

_MARK = {"passed": "pass", "failed": "FAIL", "late": "late", "error": "error",
         "not-exercised": "not exercised", "skipped": "not exercised"}  # "skipped": older reports
_PAPER = "documented, not run"


def row_labels(suts: list[str], runs: list[str]) -> list[str]:
    """Each report's row label: its SUT name, plus its run's label when another report shares the name."""
    shared = {name for name in suts if suts.count(name) > 1}
    return [f"{name} ({run})" if name in shared else name for name, run in zip(suts, runs, strict=True)]


@dataclass(frozen=True)
class PaperRow:
    """A system known only from its documentation: the rule it states, never a measurement."""

    system: str
    invariant: str
    rule: str
    not_run: str
    links: tuple[str, ...]


def paper_rows(data: dict[str, Any]) -> list[PaperRow]:
    rows = [PaperRow(e["system"], e["invariant"], e["rule"], e["not_run"], tuple(e["links"]))
            for e in data.values()]
    unknown = [row.invariant for row in rows if row.invariant not in BY_ID]
    if unknown:
        raise ValueError(f"paper rows name unknown invariants {unknown}")
    return rows


def markdown(reports: list[dict[str, Any]], notes: dict[str, str], paper: Sequence[PaperRow] = (), *,
             labels: list[str] | None = None, title: str = "Conformance matrix", footer: str = "") -> str:
    """The page; rows are labelled by SUT name unless `labels` are given; `footer` says how it was made."""
    labels = labels or [report["sut"] for report in reports]
    ids = [inv.id for inv in CATALOGUE]
    lines = [f"# {title}", "",
             "Rows are systems under test, columns invariants (RFC sections below). Each cell is the"
             " outcome and its evidence: examples that exercised the invariant / examples judged.",
             "Every failure's shrunk story follows.", "",
             "| SUT | transport | " + " | ".join(f"`{i}`" for i in ids) + " |",
             "|---|---|" + "---|" * len(ids)]
    for report, label in zip(reports, labels, strict=True):
        cells = [_cell(report, i) for i in ids]
        lines.append(f"| {label} | {report.get('transport', '')} | " + " | ".join(cells) + " |")
    for row in paper:
        cells = ["*documented*" if i == row.invariant else "" for i in ids]
        lines.append(f"| {row.system} | *{_PAPER}* | " + " | ".join(cells) + " |")
    lines += ["", "| invariant | strength | binds | RFC | summary |", "|---|---|---|---|---|"]
    lines += [f"| `{inv.id}` | {inv.strength} | {inv.binds} | {', '.join(inv.rfc)} | {inv.summary} |"
              for inv in CATALOGUE]
    for report, label in zip(reports, labels, strict=True):
        failures = [e for e in report["invariants"] if e["counterexample"]]
        if not failures and report["sut"] not in notes:
            continue
        lines += ["", f"## {label}", ""]
        if report["sut"] in notes:
            lines += [notes[report["sut"]], ""]
        for entry in failures:
            example = entry["counterexample"]
            lines += [f"### `{entry['id']}` — {', '.join(entry['rfc'])}", "",
                      f"{example['messages']} message(s), {example['transactions']} transaction(s)"
                      " into the SUT.", "", *_findings(example), "```", example["text"], "```", ""]
    if paper:
        lines += ["", f"## {_PAPER.capitalize()}", "",
                  "Their rules as their own documentation states them; not measured by this suite.", ""]
        lines += [f"- **{row.system}** (`{row.invariant}`): {row.rule} Not run here: {row.not_run}."
                  f" Sources: {', '.join(f'<{link}>' for link in row.links)}" for row in paper]
    lines += ["", "---", "", footer] if footer else []
    return "\n".join(lines).rstrip() + "\n"


def html(reports: list[dict[str, Any]], notes: dict[str, str], paper: Sequence[PaperRow] = (), *,
         labels: list[str] | None = None, title: str = "Conformance matrix", footer: str = "") -> str:
    """The page; rows are labelled by SUT name unless `labels` are given; `footer` says how it was made."""
    labels = labels or [report["sut"] for report in reports]
    ids = [inv.id for inv in CATALOGUE]
    head = "".join(f'<th title="{escape(BY_ID[i].summary)}"><span>{escape(i)}</span></th>' for i in ids)
    rows = []
    for report, label in zip(reports, labels, strict=True):
        outcomes = _outcomes(report)
        cells = "".join(
            f'<td class="{outcomes.get(i, "not-exercised")}">'
            f'{_link(report, label, i, _cell(report, i))}</td>' for i in ids)
        rows.append(f"<tr><th>{escape(label)}</th><td>{escape(report.get('transport', ''))}"
                    f"</td>{cells}</tr>")
    for row in paper:
        cells = "".join('<td class="documented"><a href="#paper">documented</a></td>' if i == row.invariant
                        else "<td></td>" for i in ids)
        rows.append(f"<tr><th>{escape(row.system)}</th><td><i>{_PAPER}</i></td>{cells}</tr>")
    details = []
    for report, label in zip(reports, labels, strict=True):
        note = notes.get(report["sut"])
        if note:
            details.append(f"<h2>{escape(label)}</h2><p>{escape(note)}</p>")
        for entry in report["invariants"]:
            example = entry["counterexample"]
            if example:
                details.append(
                    f'<details id="{_anchor(label, entry["id"])}" open><summary>'
                    f"<b>{escape(label)}</b> fails <code>{escape(entry['id'])}</code>"
                    f" ({escape(', '.join(entry['rfc']))}): {example['messages']} message(s),"
                    f" {example['transactions']} transaction(s)</summary>{_findings_html(example)}"
                    f"<pre>{escape(example['text'])}</pre></details>")
    if paper:
        details.append(f'<h2 id="paper">{_PAPER.capitalize()}</h2><p>Their rules as their own documentation'
                       " states them; not measured by this suite.</p><ul>" + "".join(
                           f"<li><b>{escape(row.system)}</b> (<code>{escape(row.invariant)}</code>):"
                           f" {escape(row.rule)} Not run here: {escape(row.not_run)}. Sources: "
                           + ", ".join(f'<a href="{escape(link)}">{escape(link)}</a>' for link in row.links)
                           + "</li>" for row in paper) + "</ul>")
    legend = "".join(f"<tr><td><code>{escape(inv.id)}</code></td><td>{inv.strength}</td>"
                     f"<td>{escape(inv.binds)}</td>"
                     f"<td>{escape(', '.join(inv.rfc))}</td><td>{escape(inv.rationale)}</td></tr>"
                     for inv in CATALOGUE)
    return _PAGE.format(title=escape(title), head=head, rows="\n".join(rows), details="\n".join(details),
                        legend=legend, footer=_CODE_SPAN.sub(r"<code>\1</code>", escape(footer)))


def _cell(report: dict[str, Any], invariant: str) -> str:
    """The outcome mark, with the expectation's category when it is not a plain violation."""
    entry: dict[str, Any] = next((e for e in report["invariants"] if e["id"] == invariant), {})
    mark = _MARK[entry.get("outcome", "not-exercised")]
    if entry.get("examples"):  # the evidence: examples that exercised it, of those judged
        mark += f" {entry['exercised']}/{entry['examples']}"
    category = (entry.get("expected") or {}).get("category", "violation")
    return mark if category == "violation" else f"{mark} ({category})"


def _findings(example: dict[str, Any]) -> list[str]:
    """A lost copy's diagnosed rule and impact table, as Markdown lines."""
    lines = []
    if example.get("diagnosis"):
        lines += [f"**The rule:** {example['diagnosis']['summary']}.", ""]
    if example.get("impact"):
        lines += ["| story | copies owed | copies filed | loses mail |", "|---|---|---|---|"]
        lines += [f"| {row['story']} | {row.get('at_least', row['owed'])} | {row['filed']} |"
                  f" {_loses(row, '**yes**', _cell_text)} |" for row in example["impact"]]
        lines.append("")
    return lines


def _findings_html(example: dict[str, Any]) -> str:
    html_text = ""
    if example.get("diagnosis"):
        html_text += f"<p><b>The rule:</b> {escape(example['diagnosis']['summary'])}.</p>"
    if example.get("impact"):
        html_text += ("<table><tr><th>story</th><th>copies owed</th><th>copies filed</th>"
                      "<th>loses mail</th></tr>" + "".join(
                          f"<tr><td>{escape(row['story'])}</td><td>{row.get('at_least', row['owed'])}</td>"
                          f"<td>{row['filed']}</td><td>{_loses(row, '<b>yes</b>', escape)}</td></tr>"
                          for row in example["impact"]) + "</table>")
    return html_text


def _loses(row: dict[str, Any], yes: str, shown: Callable[[str], str] = str) -> str:
    """A story that could not be played claims nothing: neither loss nor delivery."""
    if row.get("error"):
        return f"not played ({shown(row['error'])})"
    return yes if row["loses"] else "no"


def _cell_text(text: str) -> str:
    return text.replace("|", "\\|")


def _outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {entry["id"]: entry["outcome"] for entry in report["invariants"]}


def _anchor(label: str, invariant: str) -> str:
    return escape(f"{label}--{invariant}".replace(" ", "-"))


def _link(report: dict[str, Any], label: str, invariant: str, text: str) -> str:
    entry = next(e for e in report["invariants"] if e["id"] == invariant)
    return f'<a href="#{_anchor(label, invariant)}">{text}</a>' if entry["counterexample"] else text


_CODE_SPAN = re.compile(r"`([^`]+)`")


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 80em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: .35em .6em; text-align: center; }}
thead th {{ height: 11em; vertical-align: bottom; white-space: nowrap; }}
thead th span {{ writing-mode: vertical-rl; transform: rotate(180deg); }}
tbody th {{ text-align: left; }}
td.passed {{ background: #dff3df; }} td.failed {{ background: #f8d4d4; font-weight: bold; }}
td.error {{ background: #fbe7b5; }} td.not-exercised, td.skipped {{ color: #888; }}
td.late {{ background: #fff3c4; }} td.documented {{ font-style: italic; }}
td a {{ color: inherit; }}
details {{ margin: .8em 0; border-left: 4px solid #d66; padding-left: .8em; }}
pre {{ background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: 13px; }}
.legend td {{ text-align: left; vertical-align: top; }}
</style></head><body>
<h1>{title}</h1>
<p>Rows are systems under test, columns are invariants; a failing cell links to its shrunk story.</p>
<table><thead><tr><th>SUT</th><th>transport</th>{head}</tr></thead>
<tbody>
{rows}
</tbody></table>
<h2>Systems and counterexamples</h2>
{details}
<h2>Invariants</h2>
<table class="legend"><tr><th>id</th><th>strength</th><th>binds</th><th>RFC</th><th>rationale</th></tr>
{legend}</table>
<footer><p>{footer}</p></footer>
</body></html>
"""


if __name__ == "__main__":  # the older spelling of `mailconform matrix`
    import sys

    from mailconform.cli import main
    sys.exit(main(command="matrix", prog="python -m mailconform.specs.matrix"))
