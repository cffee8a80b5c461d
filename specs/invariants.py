"""The invariant catalogue: RFC-grounded checks over (plan, observation).

Each invariant is data -- id, RFC sections, strength, rationale in our own
words -- plus a pure check.  Reports and docs are generated from `CATALOGUE`.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any, Literal, TypeVar

from mailconform.specs.model import ExpectedCopy, Plan
from mailconform.specs.observation import Observation, ObservedCopy
from mailconform.specs.wording import counted


@dataclass(frozen=True)
class Violation:
    invariant: str
    mailbox: str
    detail: str


_Key = tuple[str, str | None]
"""(mailbox, path) -- a copy's identity."""
Check = Callable[[Plan, Observation], list[Violation]]
Strength = Literal["MUST", "SHOULD", "PRACTICE"]
"""As the RFC writes it; PRACTICE: no RFC keyword, the behaviour of every major implementation."""
Evidence = Callable[[Plan, Observation], bool]
"""Whether an example gave an invariant anything to check: a pass on no evidence is no pass."""


@dataclass(frozen=True)
class Invariant:
    id: str
    rfc: tuple[str, ...]
    strength: Strength
    binds: str
    """The party the cited sections bind, and where the suite extends them."""
    summary: str
    rationale: str
    check: Check
    exercised: Evidence
    evidence: str
    """What counts as an example that exercised the invariant, in a few words."""


_Derived = TypeVar("_Derived")


def _per_play(derive: Callable[[Plan, Observation], _Derived]) -> Callable[[Plan, Observation], _Derived]:
    """``derive``, worked out once per play: every invariant judging a play asks for the same."""
    last: list[Any] = [None, None, None]

    @functools.wraps(derive)
    def once(plan: Plan, observation: Observation) -> _Derived:
        if last[0] is not plan or last[1] is not observation:
            last[:] = plan, observation, derive(plan, observation)
        return last[2]  # type: ignore[no-any-return]
    return once


@_per_play
def owed(plan: Plan, observation: Observation) -> tuple[ExpectedCopy, ...]:
    """Expected copies whose every transaction the SUT accepted for a recipient leading there."""
    return tuple(e for e in plan.expected
                 if all(observation.accepted.get(tx, frozenset()) & rcpts for tx, rcpts in e.requires))


@dataclass(frozen=True)
class Attribution:
    """Which path each copy came by, as far as its trace tells."""

    matched: list[tuple[ObservedCopy, ExpectedCopy]]
    """Copies whose suite trace is exactly the one an expected copy was sent with."""
    stray: list[ObservedCopy]
    """Copies with an intact suite trace that no expected copy of their mailbox has."""
    damaged: list[ObservedCopy]
    """Copies whose trace no longer names their path: judged by trace-prepend-only only."""


@_per_play
def attribute(plan: Plan, observation: Observation) -> Attribution:
    """Sort copies by whether their trace identifies the path that carried them."""
    by_key: dict[_Key, tuple[ExpectedCopy, tuple[str, ...]]] = {
        (e.mailbox, e.path): (e, _suite_ids(plan, e.trace)) for e in plan.expected}
    sent_traces = {trace for _, trace in by_key.values()}
    matched, stray, damaged = [], [], []
    for c in observation.copies:
        trace = _suite_ids(plan, c.values("Received"))
        expected = by_key.get((c.mailbox, c.path))
        if expected is not None and expected[1] == trace:
            matched.append((c, expected[0]))
        elif expected is None and trace in sent_traces:
            stray.append(c)
        else:
            damaged.append(c)
    return Attribution(matched, stray, damaged)


def _suite_ids(plan: Plan, received: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The suite's transaction ids in a trace, topmost first."""
    return tuple(found for found in map(plan.naming.transaction_id_in, received) if found)


def _copy_per_path(plan: Plan, observation: Observation) -> list[Violation]:
    attribution = attribute(plan, observation)
    present = {(c.mailbox, c.path) for c, _ in attribution.matched}
    # A copy whose trace is damaged may be any missing one: it leaves one path unjudged.
    unjudged = Counter(c.mailbox for c in attribution.damaged)
    notices = Counter((n.mailbox, r, n.message_id) for n in observation.notices for r in n.recipients)
    paths: dict[tuple[str, str], list[ExpectedCopy]] = {}
    for e in owed(plan, observation):
        paths.setdefault(e.distinct_path, []).append(e)
    violations = []
    for (mailbox, first), transmissions in paths.items():
        if any((mailbox, e.path) in present for e in transmissions):
            continue
        e = transmissions[0]
        notice = (e.return_path.lower(), mailbox.lower(), e.message_id)
        if notices[notice]:
            notices[notice] -= 1
            continue
        if unjudged[mailbox]:
            unjudged[mailbox] -= 1
            continue
        again = [t.path for t in transmissions[1:]]
        sent = f" or its retransmission {', '.join(again)}" if again else ""
        violations.append(Violation("copy-per-path", mailbox, (
            f"no copy by path {first} ({' -> '.join(e.route)}){sent}, which the SUT accepted,"
            f" and no failure notice to {e.return_path}")))
    return violations


def _no_phantom_copies(plan: Plan, observation: Observation) -> list[Violation]:
    attribution = attribute(plan, observation)
    owed_paths = {(e.mailbox, e.path) for e in owed(plan, observation)}
    seen = Counter((c.mailbox, c.path) for c, _ in attribution.matched)
    seen.update((c.mailbox, c.path) for c in attribution.stray)
    violations = []
    for (mailbox, path), count in sorted(seen.items(), key=str):
        extra = count - ((mailbox, path) in owed_paths)
        if extra > 0:
            owes_one = (mailbox, path) in owed_paths
            copies = (counted(extra, "more copy", "more copies") if owes_one
                      else counted(count, "copy", "copies"))
            violations.append(Violation("no-phantom-copies", mailbox, f"{copies} by transaction {path}" + (
                " than the one it owes" if owes_one else ", which owes this mailbox none")))
    # Copies whose path cannot be told are phantoms only beyond the owed copies still missing.
    missing = Counter(mailbox for mailbox, path in owed_paths if not seen[mailbox, path])
    for mailbox, count in sorted(Counter(c.mailbox for c in attribution.damaged).items()):
        if count > missing[mailbox]:
            violations.append(Violation("no-phantom-copies", mailbox, (
                f"{counted(count, 'copy', 'copies')} whose trace names no path, but only {missing[mailbox]}"
                f" owed {'copy is' if missing[mailbox] == 1 else 'copies are'} missing")))
    return violations


def _message_id_preserved(plan: Plan, observation: Observation) -> list[Violation]:
    return [Violation("message-id-preserved", c.mailbox,
                      f"copy by path {c.path} has Message-ID {c.values('Message-ID')},"
                      f" sent as {e.message_id}")
            for c, e in attribute(plan, observation).matched if c.values("Message-ID") != [e.message_id]]


_ADDRESS = re.compile(r"[\w.+=-]+@[\w-]+(?:\.[\w-]+)+")


def _bcc_not_disclosed(plan: Plan, observation: Observation) -> list[Violation]:
    violations = []
    for c, e in attribute(plan, observation).matched:
        shown: dict[str, set[str]] = {}
        for key, (name, values) in c.fields.items():
            if key == "bcc" and e.may_show_bcc:
                continue  # the blind recipient's own copy may list the Bcc (RFC 5322 §3.6.3)
            for value in values:
                for address in _ADDRESS.findall(value):
                    if address.lower() in e.hidden:
                        shown.setdefault(name, set()).add(address.lower())
        if shown:
            where = "; ".join(f"{name}: {', '.join(sorted(found))}" for name, found in shown.items())
            violations.append(Violation("bcc-not-disclosed", c.mailbox,
                                        f"copy by path {c.path} shows blind recipients in {where}"))
    return violations


def _trace_prepend_only(plan: Plan, observation: Observation) -> list[Violation]:
    attribution = attribute(plan, observation)
    expected_mailboxes = {e.mailbox for e in plan.expected}
    violations = []
    for c in attribution.damaged:
        if c.path is None:
            if c.mailbox in expected_mailboxes:
                violations.append(Violation("trace-prepend-only", c.mailbox,
                                            "copy carries none of the Received fields the suite's hops"
                                            " prepended; the other invariants leave it unjudged"))
            continue
        found = ", ".join(_suite_ids(plan, c.values("Received")))
        violations.append(Violation("trace-prepend-only", c.mailbox, (
            f"copy's trace no longer names its path (the suite's ids, topmost first: {found});"
            " the other invariants leave it unjudged")))
    for c, e in attribution.matched:
        received = c.values("Received")
        sent = [" ".join(t.split()) for t in e.trace]
        if received[max(0, len(received) - len(sent)):] != sent:
            violations.append(Violation("trace-prepend-only", c.mailbox, (
                f"copy by path {c.path}: the Received fields sent were not kept below the new"
                f" ones in order ({len(sent)} sent, {len(received)} found)")))
    return violations


def _return_path(plan: Plan, observation: Observation) -> list[Violation]:
    violations = []
    for c, e in attribute(plan, observation).matched:
        found = [parseaddr(v)[1].lower() for v in c.values("Return-Path")]
        if found[:1] != [e.return_path.lower()]:
            violations.append(Violation("return-path-is-last-envelope-sender", c.mailbox,
                                        f"copy by path {c.path} has Return-Path {found},"
                                        f" last MAIL FROM was <{e.return_path}>"))
    return violations


def _resent_keeps_message_id(plan: Plan, observation: Observation) -> list[Violation]:
    violations = []
    for c, e in attribute(plan, observation).matched:
        if not e.resent:
            continue
        kept = (c.values("Message-ID") == [e.message_id] and bool(c.values("Resent-From"))
                and bool(c.values("Resent-Date")))
        if e.resent_message_id:
            kept = kept and e.resent_message_id in c.values("Resent-Message-ID")
        if not kept:
            violations.append(Violation("resent-keeps-message-id", c.mailbox, (
                f"resent copy by path {c.path} has Message-ID {c.values('Message-ID')},"
                f" Resent-Message-ID {c.values('Resent-Message-ID')}; sent as {e.message_id},"
                f" {e.resent_message_id}")))
    return violations


def _any_owed(plan: Plan, observation: Observation) -> bool:
    return bool(owed(plan, observation))


def _any_copy(plan: Plan, observation: Observation) -> bool:
    return bool(observation.copies)


def _any_matched(plan: Plan, observation: Observation) -> bool:
    return bool(attribute(plan, observation).matched)


def _any_copy_where_expected(plan: Plan, observation: Observation) -> bool:
    expected_mailboxes = {e.mailbox for e in plan.expected}
    return any(c.mailbox in expected_mailboxes for c in observation.copies)


def _any_resent_copy(plan: Plan, observation: Observation) -> bool:
    return any(e.resent for _, e in attribute(plan, observation).matched)


def _bcc_to_hide(plan: Plan, observation: Observation) -> bool:
    """Some owed copy came by a transaction that told the SUT an address its mailbox may not
    see: in the envelope (a blind RCPT next to others) or in a Bcc field."""
    known = {tx.id: {r.lower() for r in tx.rcpts} | set(_ADDRESS.findall(" ".join(tx.content.values("Bcc"))))
             for tx in plan.injections}
    return any(e.hidden & known.get(e.path, set()) for e in owed(plan, observation))


CATALOGUE: tuple[Invariant, ...] = (
    Invariant(
        "copy-per-path",
        ("RFC 5321 §4.1.1.4", "RFC 5321 §6.1", "RFC 5321 §6.2", "RFC 5321 §3.9", "RFC 1047"),
        "MUST", "any server that answered 250 after the final dot (relay or final delivery)",
        "Every accepted distinct delivery path leaves a copy in its mailbox, or a failure notice.",
        "A 250 after the final dot moves responsibility for the message to the server: from then"
        " on it delivers, or tells the reverse-path it could not, and it must not lose the message"
        " for frivolous reasons (§4.1.1.4, §6.1). §6.2 records that silently dropping mail is"
        " done in practice, but only for messages judged fraudulent with very high confidence;"
        " a copy that shares its Message-ID with one already filed is no such judgement. A path"
        " is a route -- entry, the hops the message passed (list, forward, resend), the recipient"
        " that led to the mailbox -- so a Bcc to oneself and a list's copy are two paths and both"
        " are owed. The same client sending the same message over the same route again (a"
        " retransmission after a lost reply, RFC 1047) is the same path: at least one copy is"
        " owed, and one or two both conform. Refusing with 4xx/5xx before or at the dot is"
        " conforming: nothing was accepted.",
        _copy_per_path, _any_owed, "examples with an owed copy"),
    Invariant(
        "no-phantom-copies", ("RFC 5321 §3.9.1", "RFC 1047"),
        "PRACTICE", "final delivery",
        "Without injected faults, a mailbox holds at most one copy per transaction that reached it.",
        "No RFC keyword forbids filing a copy twice; this is the practice every major MTA follows,"
        " and the suite reports it as such. An alias replaces the recipient and the message is"
        " delivered to each expanded address (§3.9.1): a user reached twice inside one"
        " transaction (the same RCPT repeated, To plus an alias) is one path, and stores that"
        " merge those recipients are right to. RFC 1047 explains duplicates as the by-product of a"
        " reply lost after the dot; when no link failed, an extra copy is one the server invented.",
        _no_phantom_copies, _any_copy, "examples with any copy"),
    Invariant(
        "message-id-preserved", ("RFC 5321 §3.9", "RFC 5322 §3.6.4"),
        "MUST", "list and alias expansion (RFC 5321 §3.9); extended here to every later hop",
        "Every copy carries the Message-ID its originator gave it.",
        "RFC 5322 §3.6.4 binds the originator: it gives the message one identifier, and that id"
        " names the message, not a delivery of it. RFC 5321 §3.9 requires list and alias"
        " expansion to leave the header section unchanged. The suite extends that rule to the"
        " store: a store that rewrites the Message-ID breaks what §3.6.4 lets every reader rely on"
        " (threading, replies, references), and hides that two copies are one message.",
        _message_id_preserved, _any_matched, "examples with a copy traced to its path"),
    Invariant(
        "bcc-not-disclosed", ("RFC 5322 §3.6.3", "RFC 5321 §7.2", "RFC 5321 §4.4"),
        "SHOULD", "the originator's agent (RFC 5322 §3.6.3) and every SMTP server (RFC 5321 §7.2)",
        "No copy shows a recipient the addresses others were blind-copied to.",
        "RFC 5322 §3.6.3 leaves the originator's agent a choice of methods (strip the Bcc field,"
        " separate copies that may show it, an empty field) and calls the choice"
        " implementation-dependent. RFC 5321 §7.2 says servers should not copy the envelope's"
        " recipients into the header, as trace or any other field, and §4.4 calls a Received"
        " `for` clause naming several recipients usually undesirable. So the suite looks at every"
        " header field of a copy -- Bcc, Apparently-To, X-Original-To, Delivered-To, Received"
        " `for` -- for an address blind-copied by someone else, and reports it at SHOULD strength.",
        _bcc_not_disclosed, _bcc_to_hide, "examples where the SUT had to hide a Bcc"),
    Invariant(
        "trace-prepend-only", ("RFC 5321 §4.4", "RFC 5321 §6.3"),
        "MUST", "every SMTP server (relay and final delivery)",
        "Received fields are only ever prepended; earlier ones survive in order.",
        "Each server handling a message adds its own trace field on top and must neither change,"
        " delete nor reorder the ones below (§4.4): they are how loops are detected (§6.3) and how"
        " a delivery is explained later. The suite also needs them to tell which path a copy came"
        " by; a copy whose trace no longer names its path is reported here, and the other"
        " invariants leave it unjudged rather than blame the wrong path.",
        _trace_prepend_only, _any_copy_where_expected, "examples with a copy where one was expected"),
    Invariant(
        "return-path-is-last-envelope-sender", ("RFC 5321 §4.4", "RFC 5321 §3.9.2"),
        "MUST", "final delivery",
        "Final delivery records the last hop's MAIL FROM as Return-Path.",
        "The server that files a message inserts a Return-Path holding the reverse-path of the"
        " transaction that brought it (§4.4: required, mail systems must support it); for a"
        " list's copy that is the list's administrative address (§3.9.2), not the author.",
        _return_path, _any_matched, "examples with a copy traced to its path"),
    Invariant(
        "resent-keeps-message-id", ("RFC 5322 §3.6.6", "RFC 5321 §3.9"),
        "MUST", "the resender (RFC 5322 §3.6.6); extended here to every later hop",
        "A resent copy keeps the original Message-ID and its Resent block.",
        "RFC 5322 §3.6.6 binds the resender: a reintroduced message gets a Resent block on top and"
        " nothing else changes, so the original Message-ID stays and a Resent-Message-ID, when"
        " given, names only the resend. The suite extends RFC 5321 §3.9's rule that expansion"
        " leaves the header section unchanged to the store: dropping the block or the original"
        " id erases who reintroduced the message and makes the resend look like a new message.",
        _resent_keeps_message_id, _any_resent_copy, "examples with a resent copy traced to its path"),
)

BY_ID = {invariant.id: invariant for invariant in CATALOGUE}
