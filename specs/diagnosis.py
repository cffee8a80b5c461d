"""Which properties a store's duplicate rule compares: experiments that vary one at a time.

When `copy-per-path` fails, two copies of the minimal story met in one mailbox
and one was lost.  The experiments resend that pair under a fresh nonce,
changing exactly one property of the lost copy (its Message-ID, Date, body,
envelope sender, the time before it arrives, ...): a change that brings the
copy back is part of the store's key; one that does not is ignored by it.

Pure: what each variation is and how results become a claim.  Playing the
experiments against a SUT is `suts.diagnose`.  Nothing is claimed that no
experiment showed; contradictory results give no key at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, Literal

from mailconform.specs.invariants import owed
from mailconform.specs.model import ExpectedCopy, Plan, Transaction
from mailconform.specs.observation import Observation
from mailconform.specs.scenario import Scenario

Result = Literal["filed", "lost", "bounced", "refused", "elsewhere", "unseen", "not-run"]


@dataclass(frozen=True)
class Collision:
    """Two copies of the minimal story that met in one mailbox: the first filed, the second lost."""

    mailbox: str
    """The mailbox's symbol (u1)."""
    first: int | None
    """Index into the plan's injections of the copy that was filed (None: none was)."""
    second: int


def collision(plan: Plan, observation: Observation) -> Collision | None:
    """The first lost copy and the copy already filed in its mailbox, if any copy was lost."""
    present = Counter((c.mailbox, c.path) for c in observation.copies)
    lost: ExpectedCopy | None = None
    for e in owed(plan, observation):
        if present[e.mailbox, e.path]:
            present[e.mailbox, e.path] -= 1
        elif not e.at_sink:
            lost = e
            break
    if lost is None:
        return None
    order = [tx.id for tx in plan.injections]
    filed = sorted(order.index(str(c.path)) for c in observation.copies_in(lost.mailbox)
                    if c.path in order and c.path != lost.path)
    return Collision(plan.naming.symbol_of(lost.mailbox), filed[0] if filed else None,
                     order.index(lost.path))


@dataclass(frozen=True)
class Send:
    transaction: Transaction
    gap: float = 0.0
    """Seconds to let pass after the previous send (0: at once)."""
    own_connection: bool = False


@dataclass(frozen=True)
class Experiment:
    """One resend of the pair, ready to play: a plan whose injections are the sends."""

    vary: str
    plan: Plan
    sends: tuple[Send, ...]
    addressed: str
    """The mailbox the lost copy was addressed to in this experiment."""
    variant: str | None = None
    """An envelope recipient written differently from the mailbox's address (recipient form)."""
    needs_state: bool = False
    """Played in several steps: the SUT must keep its mailboxes and memory between them."""


@dataclass(frozen=True)
class Trial:
    """What one experiment showed."""

    vary: str
    result: Result
    copies: int
    expected: int
    gap_seconds: float | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"vary": self.vary, "copies": self.copies, "expected": self.expected,
                                "result": self.result}
        if self.gap_seconds is not None:
            data["gap_seconds"] = round(self.gap_seconds, 3)
        if self.note:
            data["note"] = self.note
        return data


_DESCRIPTIONS = {
    "none": "the pair as the story sent it",
    "alone": "the lost copy alone",
    "message-id": "a different Message-ID",
    "message-id-case": "the same Message-ID in other letter case",
    "date": "a different Date",
    "from": "a different From",
    "subject": "a different Subject",
    "body": "a different body",
    "resent-message-id": "a Resent block with a Resent-Message-ID",
    "shared-resent-message-id": "both with one Resent-Message-ID, different Message-IDs",
    "list-id": "a different List-Id",
    "envelope-sender": "a different envelope sender (MAIL FROM)",
    "recipient-case": "the recipient's local part in capitals",
    "recipient-detail": "the recipient with a +detail",
    "connection": "on a connection of its own",
    "other-mailbox": "to another mailbox of the same domain",
    "gap": "sent after a pause",
}
KEY_PROPERTIES = ("message-id", "date", "from", "subject", "body", "resent-message-id", "list-id",
                  "envelope-sender", "recipient-case", "recipient-detail", "connection")
"""Properties a key may include: varied alone, each either restores delivery or does not."""
_SHOWN = {"message-id": "Message-ID", "date": "Date", "from": "From", "subject": "Subject",
          "body": "body", "resent-message-id": "Resent-Message-ID", "list-id": "List-Id",
          "envelope-sender": "envelope sender", "recipient-case": "recipient as written",
          "recipient-detail": "recipient +detail", "connection": "connection"}


def describe(vary: str) -> str:
    return _DESCRIPTIONS[vary]


_Vary = Callable[[Transaction, Plan], Transaction]


def _header(name: str, value: Callable[[str, Plan], str]) -> _Vary:
    def vary(tx: Transaction, plan: Plan) -> Transaction:
        content = tx.content
        old = content.values(name)
        new = value(old[0] if old else "", plan)
        content = content.with_value(name, new) if old else content.append((name, new))
        return replace(tx, content=content)
    return vary


def _other_case(message_id: str, plan: Plan) -> str:
    local, at, domain = message_id.partition("@")
    return local.upper() + at + domain


def _later(date: str, plan: Plan) -> str:
    return format_datetime(parsedate_to_datetime(date) + timedelta(hours=1))


def _resent_block(plan: Plan, tag: str) -> tuple[tuple[str, str], ...]:
    naming = plan.naming
    return (("Resent-From", naming.address("r9")), ("Resent-To", naming.address("u1")),
            ("Resent-Date", "Mon, 30 Nov 2026 09:30:00 +0000"),
            ("Resent-Message-ID", naming.resent_message_id(tag, 9)))


def _with_resent(tx: Transaction, block: Iterable[tuple[str, str]]) -> Transaction:
    """Resent fields go below the trace fields on top, as a resender writes them before sending."""
    headers = tx.content.headers
    top = next((i for i, (name, _) in enumerate(headers) if name.lower() != "received"), len(headers))
    return replace(tx, content=replace(tx.content, headers=headers[:top] + tuple(block) + headers[top:]))


def _recipient(form: Callable[[str], str]) -> _Vary:
    def vary(tx: Transaction, plan: Plan) -> Transaction:
        return replace(tx, rcpts=tuple(form(r) for r in tx.rcpts))
    return vary


def _capitals(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local.upper()}@{domain}"


def _detail(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local}+detail@{domain}"


_CONTENT_VARIATIONS: dict[str, _Vary] = {
    "message-id": _header("Message-ID", lambda old, plan: plan.naming.message_id("kvaried")),
    "message-id-case": _header("Message-ID", _other_case),
    "date": _header("Date", _later),
    "from": _header("From", lambda old, plan: plan.naming.address("r9")),
    "subject": _header("Subject", lambda old, plan: f"{old} (varied)"),
    "body": lambda tx, plan: replace(tx, content=replace(
        tx.content, body=tx.content.body + "One line more.\n")),
    "resent-message-id": lambda tx, plan: _with_resent(tx, _resent_block(plan, "varied")),
    "list-id": _header("List-Id", lambda old, plan: "<varied.lists.test>"),
    "envelope-sender": lambda tx, plan: replace(tx, mail_from=plan.naming.list_bounces("L9")),
    "recipient-case": _recipient(_capitals),
    "recipient-detail": _recipient(_detail),
}
SINGLE_PLAY = ("none", "alone", *_CONTENT_VARIATIONS, "shared-resent-message-id", "other-mailbox")
"""Experiments played in one go, in the order they run."""


def experiment(vary: str, base: Plan, pair: Collision, gap: float = 0.0) -> Experiment:
    """The pair of ``base`` (the minimal story under a fresh nonce) with one property of the
    lost copy varied; ``vary`` is one of SINGLE_PLAY, "connection" or "gap"."""
    mailbox = base.naming.address(pair.mailbox)
    first = _to(base.injections[pair.first], base, mailbox) if pair.first is not None else None
    second = _to(base.injections[pair.second], base, mailbox)
    world = base.scenario.world
    users = world.local_users
    variant = None
    if vary in _CONTENT_VARIATIONS:
        second = _CONTENT_VARIATIONS[vary](second, base)
        variant = second.rcpts[0] if vary.startswith("recipient") else None
    elif vary == "shared-resent-message-id" and first is not None:
        block = _resent_block(base, "shared")
        first = _with_resent(first, block)
        second = _CONTENT_VARIATIONS["message-id"](_with_resent(second, block), base)
    elif vary == "other-mailbox":
        users = (*users, f"u{len(users) + 1}")
        second = replace(second, rcpts=(base.naming.address(users[-1]),))
    addressed = second.rcpts[0].lower() if vary == "other-mailbox" else mailbox
    sends = [Send(second, gap, vary == "connection")]
    expected = [_expected(base, second, mailbox, addressed)]
    if first is not None and vary != "alone":
        sends.insert(0, Send(first))
        expected.insert(0, _expected(base, first, mailbox, mailbox))
    the_plan = replace(base, scenario=Scenario(replace(world, local_users=users), ()),
                       injections=tuple(s.transaction for s in sends), expected=tuple(expected))
    return Experiment(vary, the_plan, tuple(sends), addressed, variant,
                      needs_state=vary in ("connection", "gap"))


def _to(tx: Transaction, plan: Plan, mailbox: str) -> Transaction:
    """``tx`` sent to the envelope recipients that led to ``mailbox`` only."""
    reaching = next(rcpts for e in plan.expected if e.mailbox == mailbox and e.path == tx.id
                    for t, rcpts in e.requires if t == tx.id)
    return replace(tx, rcpts=tuple(r for r in tx.rcpts if r.lower() in reaching))


def _expected(base: Plan, tx: Transaction, story_mailbox: str, mailbox: str) -> ExpectedCopy:
    """The copy ``tx`` owes ``mailbox``: the story's copy for its path, owed as soon as this
    one transaction is accepted."""
    story = next(e for e in base.expected if e.mailbox == story_mailbox and e.path == tx.id)
    resent = tx.content.values("Resent-Message-ID")
    return replace(story, mailbox=mailbox, requires=((tx.id, frozenset(r.lower() for r in tx.rcpts)),),
                   message_id=tx.content.values("Message-ID")[0], return_path=tx.mail_from,
                   resent_message_id=resent[0] if resent else None,
                   trace=tuple(tx.content.values("Received")))


def judge(experiment: Experiment, observation: Observation, elsewhere: int | None = None,
          gap_seconds: float | None = None) -> Trial:
    """What the SUT did with the experiment's sends: ``observation`` is what the addressed
    mailboxes held at the end; ``elsewhere`` the copies found under a recipient variant's own
    mailbox (None: that mailbox could not be read)."""
    plan = experiment.plan
    ids = {s.transaction.id for s in experiment.sends}
    refused = [tx for tx in ids if not observation.accepted.get(tx)]
    owed_copies = owed(plan, observation)
    copies = sum(1 for c in observation.copies if c.path in ids and
                 any(e.mailbox == c.mailbox and e.path == c.path for e in plan.expected))
    expected = len(owed_copies)
    if refused:
        return Trial(experiment.vary, "refused", copies, expected, gap_seconds,
                     "the SUT refused " + ", ".join(sorted(refused)))
    if copies >= expected:
        return Trial(experiment.vary, "filed", copies, expected, gap_seconds)
    if experiment.variant and elsewhere:
        return Trial(experiment.vary, "elsewhere", copies, expected, gap_seconds,
                     f"filed under {experiment.variant}, a mailbox of its own")
    if experiment.variant and elsewhere is None:
        return Trial(experiment.vary, "unseen", copies, expected, gap_seconds,
                     f"not in {experiment.addressed}; the mailbox of {experiment.variant} cannot be read")
    notices = sum(len(n.recipients & {e.mailbox for e in owed_copies}) for n in observation.notices)
    return Trial(experiment.vary, "bounced" if copies + notices >= expected else "lost",
                 copies, expected, gap_seconds)


def not_run(vary: str, why: str) -> Trial:
    return Trial(vary, "not-run", 0, 0, note=why)


@dataclass(frozen=True)
class Diagnosis:
    key: tuple[str, ...] | None
    case_sensitive: bool | None
    scope: Literal["mailbox", "domain"] | None
    window_seconds: float | None
    window_tolerance: float | None
    overrides: tuple[tuple[str, str], ...]
    """(A, B): A, when the copy has one, is compared instead of B."""
    ignored: tuple[str, ...]
    experiments: tuple[Trial, ...]
    summary: str

    def to_json(self) -> dict[str, Any]:
        return {"key": list(self.key) if self.key is not None else None,
                "case_sensitive": self.case_sensitive, "scope": self.scope,
                "window_seconds": self.window_seconds, "window_tolerance_seconds": self.window_tolerance,
                "overrides": {a: b for a, b in self.overrides}, "ignored": list(self.ignored),
                "experiments": [t.to_json() for t in self.experiments], "summary": self.summary}

    def text(self) -> list[str]:
        """The diagnosis for a terminal or a ticket: the claim, then every experiment."""
        lines = [f"Diagnosis: {self.summary}"]
        if self.key is not None:
            lines.append(f"  key: {', '.join(self.key)}; ignored: {', '.join(self.ignored) or '-'}")
        lines.append("  experiments (the lost copy varied one property at a time):")
        for t in self.experiments:
            gap = f" of {t.gap_seconds:.2f} s" if t.gap_seconds is not None else ""
            note = f" ({t.note})" if t.note else ""
            lines.append(f"    {t.vary:<26} {describe(t.vary)}{gap}: {t.copies} of {t.expected}"
                         f" {'copy' if t.expected == 1 else 'copies'} filed -> {t.result}{note}")
        return lines


def unexplained(summary: str, trials: Iterable[Trial] = ()) -> Diagnosis:
    return Diagnosis(None, None, None, None, None, (), (), tuple(trials), summary)


def next_gap(trials: Iterable[Trial], gaps: tuple[float, ...], tolerance: float) -> float | None:
    """The next pause to try: each of ``gaps`` in turn until one restores delivery, then halving
    the interval between the longest pause that lost the copy and the shortest that filed it
    until it is no wider than twice ``tolerance``.  None: nothing more to learn."""
    timed = [t for t in trials if t.vary == "gap" and t.gap_seconds is not None]
    filed = [t.gap_seconds for t in timed if t.result == "filed" and t.gap_seconds is not None]
    lost = [t.gap_seconds for t in timed if t.result in ("lost", "bounced") and t.gap_seconds is not None]
    if len(timed) != len(filed) + len(lost):
        return None  # refused or unreadable: timing tells nothing here
    if not filed:
        return gaps[len(timed)] if len(timed) < len(gaps) else None
    low, high = max((g for g in lost if g < min(filed)), default=0.0), min(filed)
    if high - low <= 2 * tolerance or any(g > high for g in lost):
        return None
    return (low + high) / 2


def conclude(trials: Iterable[Trial]) -> Diagnosis:
    """The claim the experiments support, and nothing more."""
    trials = tuple(trials)
    by = {t.vary: t for t in trials}
    matched = ("lost", "bounced")
    bases = [t for t in trials if t.vary == "none"]
    if not bases or any(t.result not in matched for t in bases):
        if bases and all(t.result == "filed" for t in bases):
            return unexplained("the loss did not reproduce when the two copies were sent again on"
                               " their own; no rule could be measured", trials)
        return unexplained("inconsistent: the pair sent again did not lose a copy every time ("
                           + ", ".join(t.result for t in bases) + ")", trials)
    if "alone" in by and by["alone"].result in matched:
        return unexplained("loses the copy even when it arrives alone: not a duplicate rule", trials)
    key = [p for p in KEY_PROPERTIES if p in by and by[p].result == "filed"]
    ignored = [p for p in KEY_PROPERTIES if p in by and by[p].result in matched]
    overrides: list[tuple[str, str]] = []
    shared = by.get("shared-resent-message-id")
    if "resent-message-id" in key and "message-id" in key and shared and shared.result in matched:
        key.remove("resent-message-id")
        overrides.append(("resent-message-id", "message-id"))
    window, tolerance, inconsistent = _window([t for t in trials if t.vary == "gap"])
    if inconsistent:
        return unexplained(f"inconsistent timing: {inconsistent}", trials)
    if not key:
        return unexplained("no single change we tried brought the lost copy back, so no key over"
                           " these properties explains the loss", trials)
    case = by.get("message-id-case")
    case_sensitive = (None if "message-id" not in key or not case or case.result not in (*matched, "filed")
                      else case.result == "filed")
    other = by.get("other-mailbox")
    scope: Literal["mailbox", "domain"] | None = (
        None if not other or other.result not in (*matched, "filed")
        else "mailbox" if other.result == "filed" else "domain")
    summary = _summary(key, case_sensitive, scope, window, tolerance, overrides,
                       [t for t in trials if t.vary == "gap"])
    return Diagnosis(tuple(key), case_sensitive, scope, window, tolerance, tuple(overrides),
                     tuple(ignored), trials, summary)


def _window(gaps: list[Trial]) -> tuple[float | None, float | None, str]:
    filed = sorted(t.gap_seconds for t in gaps if t.result == "filed" and t.gap_seconds is not None)
    lost = sorted(t.gap_seconds for t in gaps
                  if t.result in ("lost", "bounced") and t.gap_seconds is not None)
    if not filed:
        return None, None, ""
    if lost and lost[-1] > filed[0]:
        return None, None, (f"a copy was lost after {lost[-1]:.2f} s but filed after {filed[0]:.2f} s")
    low = lost[-1] if lost else 0.0
    return round((low + filed[0]) / 2, 3), round((filed[0] - low) / 2, 3), ""


def _summary(key: list[str], case_sensitive: bool | None, scope: str | None, window: float | None,
             tolerance: float | None, overrides: list[tuple[str, str]], gaps: list[Trial]) -> str:
    where = {"mailbox": "the mailbox", "domain": "any mailbox of the domain"}.get(str(scope), "the mailbox")
    text = f"drops a copy when {where} has already received one with the same " + _and(
        [_SHOWN[k] for k in key])
    if case_sensitive is False:
        text += " (Message-IDs compared ignoring letter case)"
    if window is not None:
        text += f" less than {window:.2f} s (± {tolerance:.2f} s) before"
    elif gaps:
        longest = max(t.gap_seconds or 0.0 for t in gaps)
        text += f", however long before (no time window up to {longest:.1f} s)"
    if overrides:
        text += "; a Resent-Message-ID, when present, is compared instead of the Message-ID"
    if scope is None:
        text += "; its scope could not be measured"
    return text


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
