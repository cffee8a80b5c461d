"""A bug-report bundle: everything about one failed invariant, ready to attach to a ticket.

    DIR/<sut>/<invariant>/
        REPORT.md        what was sent, answered, filed and owed (with RFC grounds), the
                         diagnosis, the impact table and how to replay -- paste it into a ticket
        story.txt        the shrunk story, each symbol beside the address it had
        transcript.txt   the client/server dialogue of every transaction, timed
        sent/tN.eml      the exact bytes of each transaction; sent/envelope.json its envelope
        observed/<mailbox>/NN-tK.eml   each copy as filed (NN-notice.eml: failure notices)
        replay.json      what `mailconform replay` needs

Nothing in it names a path on the machine that made it.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from mailconform import __version__
from mailconform.specs.diagnosis import Diagnosis
from mailconform.specs.explain import InvariantViolation, names, scenario_json, symbolizer
from mailconform.specs.impact import ImpactRow, table
from mailconform.specs.model import Plan, Transaction

FORMAT = 1


def folder_name(text: str) -> str:
    """A SUT name as a directory name (embedded:dedup-message-id -> embedded_dedup-message-id)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def short(transaction_id: str) -> str:
    """mc1a2b3c4dt2 -> t2"""
    return "t" + transaction_id.rpartition("t")[2]


def write(root: Path, violation: InvariantViolation, diagnosis: Diagnosis | None = None,
          impact: tuple[ImpactRow, ...] = ()) -> Path:
    """Write the bundle for ``violation`` under ``root``; a bundle already there is replaced."""
    folder = root / folder_name(violation.sut) / violation.invariant.id
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "sent").mkdir(parents=True)
    plan, observation = violation.plan, violation.observation
    (folder / "story.txt").write_text(plan.scenario.story() + "\n\nNames in this run"
                                      f" (nonce {plan.naming.nonce}):\n" + "\n".join(names(plan)) + "\n")
    (folder / "transcript.txt").write_text(_transcript(plan, observation.transcripts))
    envelopes = []
    for tx in plan.injections:
        name = f"sent/{short(tx.id)}.eml"
        (folder / name).write_bytes(tx.data)
        envelopes.append({"transaction": short(tx.id), "id": tx.id, "hop": tx.hop, "entry": tx.entry,
                          "mail_from": tx.mail_from, "rcpts": list(tx.rcpts), "file": name,
                          "replies": dict(observation.replies.get(tx.id, {}))})
    (folder / "sent" / "envelope.json").write_text(json.dumps(envelopes, indent=2) + "\n")
    filed = _observed(folder / "observed", violation)
    (folder / "replay.json").write_text(json.dumps(replay_data(violation), indent=2) + "\n")
    (folder / "REPORT.md").write_text(report(violation, envelopes, filed, diagnosis, impact))
    return folder


def replay_data(violation: InvariantViolation) -> dict[str, Any]:
    plan = violation.plan
    naming = plan.naming
    aliases = {naming.address(a) for a, _ in plan.scenario.world.aliases}
    return {"format": FORMAT, "mailconform": __version__, "sut": violation.sut,
            "invariant": violation.invariant.id, "scenario": scenario_json(plan.scenario),
            "nonce": naming.nonce, "domain": naming.sut_domain, "pool": dict(naming.pool),
            "roles": sorted(plan.roles),
            # Only a SUT that expands aliases itself is sent alias addresses at its mx.
            "expands_aliases": any(r in aliases for tx in plan.injections if tx.entry == "mx"
                                   for r in tx.rcpts)}


def _transcript(plan: Plan, transcripts: Any) -> str:
    blocks = []
    for tx in plan.injections:
        lines = transcripts.get(tx.id) or ("(no dialogue: this SUT runs in-process, without a wire)",)
        blocks.append(f"== {short(tx.id)}  {tx.hop} -> SUT {tx.entry}  (Received id {tx.id})\n"
                      + "\n".join(lines))
    return "Times are UTC. C: the suite, S: the server under test.\n\n" + "\n\n".join(blocks) + "\n"


def _observed(folder: Path, violation: InvariantViolation) -> dict[str, list[str]]:
    """Write every copy and notice the mailboxes held; mailbox -> file names."""
    observation = violation.observation
    filed: dict[str, list[str]] = {}
    items = [(c.mailbox, short(c.path) if c.path else "untraced", c.raw) for c in observation.copies]
    items += [(n.mailbox, "notice", n.raw) for n in observation.notices]
    for mailbox, label, raw in items:
        names_here = filed.setdefault(mailbox, [])
        name = f"{len(names_here) + 1:02d}-{label}.eml"
        (folder / folder_name(mailbox)).mkdir(parents=True, exist_ok=True)
        (folder / folder_name(mailbox) / name).write_bytes(raw)
        names_here.append(name)
    return filed


def report(violation: InvariantViolation, envelopes: list[dict[str, Any]], filed: dict[str, list[str]],
           diagnosis: Diagnosis | None, impact: tuple[ImpactRow, ...]) -> str:
    """REPORT.md: a ticket a mail engineer can act on."""
    invariant, plan = violation.invariant, violation.plan
    mailboxes = sorted({v.mailbox for v in violation.violations})
    lines = [f"# {violation.sut} breaks `{invariant.id}` ({invariant.strength})", "",
             f"**{invariant.summary}**", ""]
    if diagnosis and diagnosis.key is not None:
        lines += [f"In one sentence: the server {diagnosis.summary}.", ""]
    lines += ["## The story", "", "```", plan.scenario.story(), "", *names(plan), "```", "",
              "## What was sent, and what the server answered", "",
              "| tx | from | into | MAIL FROM | RCPT TO | replies (MAIL, RCPT, final dot) |",
              "|---|---|---|---|---|---|"]
    for env in envelopes:
        for rcpt in env["rcpts"]:
            lines.append(f"| {env['transaction']} | {env['hop']} | {env['entry']} | `<{env['mail_from']}>`"
                         f" | `<{rcpt}>` | {env['replies'].get(rcpt, 'not sent')} |")
    lines += ["", "Each message is in `sent/tN.eml`, its envelope in `sent/envelope.json`; the full"
              " dialogue with timestamps is in `transcript.txt`. Every copy carries a Received field"
              " whose `id` names the transaction (tN) that brought it.", "",
              "## What was filed", ""]
    for mailbox in sorted(set(filed) | set(mailboxes)):
        files = filed.get(mailbox, [])
        lines.append(f"- `{mailbox}`: " + (", ".join(f"`observed/{folder_name(mailbox)}/{f}`"
                                                       for f in files) or "nothing"))
    lines += ["", "## What was owed, and why", ""]
    symbolic = symbolizer(plan)
    lines += [f"- `{v.mailbox}` ({symbolic(v.mailbox)}): {symbolic(v.detail)}" for v in violation.violations]
    lines += ["", invariant.rationale, "",
              f"Whom this binds: {invariant.binds}. Grounded in {', '.join(invariant.rfc)}.", ""]
    if diagnosis:
        lines += ["## The rule the server applies", "", diagnosis.summary[:1].upper() + diagnosis.summary[1:]
                  + ".", "", "Measured by resending the two colliding copies under fresh Message-IDs,"
                  " varying one property of the lost copy at a time:", "",
                  "| varied | copies filed | expected | result |", "|---|---|---|---|"]
        lines += [f"| {t.vary}{f' ({t.gap_seconds:.2f} s)' if t.gap_seconds is not None else ''} |"
                  f" {t.copies} | {t.expected} | {t.result}{f' ({t.note})' if t.note else ''} |"
                  for t in diagnosis.experiments]
        lines.append("")
    if impact:
        lines += ["## Where else it loses mail", "", *table(impact), ""]
    lines += ["## How to replay", "", "```sh",
              "mailconform replay THIS_FOLDER --inject smtp://SERVER:PORT --mailbox 'TEMPLATE'"
              "   # or lmtp://...; TEMPLATE e.g. imap://{local}@SERVER:143",
              "# or: --sut-config your-server.toml (passwords, provisioning, timeouts)", "```", "",
              "The replay sends these transactions again with fresh Message-IDs (`--same-ids` keeps"
              " them), reads the mailboxes and says whether the loss reproduces (exit 0 reproduced,"
              " 1 not, 2 error).", ""]
    if violation.sut.startswith(("embedded", "model:")):
        policy = violation.sut.partition(":")[2] or "reference"
        lines += ["The same rule runs in mailconform's own server:"
                  f" `mailconform serve embedded-lmtp:{policy}` prints its URL and mailbox template.", ""]
    lines.append(f"_Made by mailconform {__version__}._")
    return "\n".join(lines) + "\n"


def sent_bytes(folder: Path, transaction: Transaction) -> bytes:
    """The bytes the bundle in ``folder`` recorded for ``transaction``."""
    return (folder / "sent" / f"{short(transaction.id)}.eml").read_bytes()
