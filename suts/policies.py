"""Named delivery policies: the reference behaviour and known-bad rules seen in the wild.

Each known-bad policy reproduces a real system's rule so the self-tests can
prove the suite catches it; `breaks` names the invariant it violates.  The
conforming ones differ from the reference in ways the RFCs allow (a refusal,
a notice, one copy of an identical retransmission), so the self-tests can
prove the suite does not flag them.
"""

from __future__ import annotations

import email.policy
import hashlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage, Message
from email.utils import make_msgid, parseaddr

from mailconform.suts.wire.replies import Reply

OVER_QUOTA_LIMIT = 4
"""Mailbox size (in messages) at which the quota policies stop filing: more than any
two-message story fills, so the search has to build a busy mailbox to reach it."""
TIME_WINDOW = 1.0
"""Seconds `dedup-time-window` remembers a Message-ID: short, so a test can measure it."""
FORMAIL_CACHE = 1
"""Message-IDs the `dedup-window` cache keeps per mailbox, scaled to the stories' size:
a second, different Message-ID evicts the first."""


@dataclass(frozen=True)
class Envelope:
    """The transaction a copy arrived in."""

    mail_from: str
    rcpts: tuple[str, ...]


@dataclass
class Policy:
    """The reference behaviour; other policies override one decision each.

    A policy with `breaks` is known-bad; one without is conforming (some, like
    `refuse-duplicate` and `dedup-exact`, differ from the reference and still conform).
    """

    name: str = "reference"
    found_in: str = "the reference delivery model"
    breaks: str | None = None
    strips_bcc: bool = True
    bounces_refused: bool = False
    """When a copy is not filed, send a failure notice (conforming) instead of dropping it."""

    copies: int = 1
    """How many times each admitted copy is filed."""

    @property
    def reads_content(self) -> bool:
        """Whether this policy overrides a decision that reads the message (the reference's
        reads none, so its server need not parse one)."""
        return any(getattr(type(self), name) is not getattr(Policy, name)
                   for name in ("refusal", "admits", "return_path"))

    def refusal(self, message: Message) -> Reply | None:
        """A reply refusing the whole transaction at the final dot, or None to take it."""
        return None

    def admits(self, mailbox: str, message: Message, held: Sequence[Message],
               envelope: Envelope) -> bool:
        return True

    def return_path(self, mail_from: str, message: Message) -> str:
        return mail_from

    def trace_for(self, envelope: Envelope) -> str:
        """The `for` clause of the server's own Received field (the reference writes none)."""
        return ""

    def rewrite(self, raw: bytes, envelope: Envelope) -> bytes:
        """The copy as filed (known-bad policies change it)."""
        return raw


@dataclass
class _Keyed(Policy):
    """Drop a copy whose key was seen before in the same mailbox (in the window, if any).

    The state lives as long as the policy: each example gets a fresh instance.
    """

    key: Callable[[Message, Envelope], object] = lambda m, e: None
    window: int | None = None
    _seen: dict[str, deque[object]] = field(default_factory=dict)

    def admits(self, mailbox: str, message: Message, held: Sequence[Message],
               envelope: Envelope) -> bool:
        seen = self._seen.setdefault(mailbox, deque(maxlen=self.window))
        key = self.key(message, envelope)
        if key in seen:
            return False
        seen.append(key)
        return True


@dataclass
class _RecentMessageId(Policy):
    """Drop a copy whose Message-ID was filed in the same mailbox less than `window` seconds ago."""

    window: float = TIME_WINDOW
    _arrivals: dict[tuple[str, object], float] = field(default_factory=dict)

    def admits(self, mailbox: str, message: Message, held: Sequence[Message],
               envelope: Envelope) -> bool:
        now = time.monotonic()
        key = (mailbox, message["Message-ID"])
        if now - self._arrivals.get(key, -self.window) < self.window:
            return False
        self._arrivals[key] = now
        return True


class _MailboxHoldsMessageId(Policy):
    def admits(self, mailbox: str, message: Message, held: Sequence[Message],
               envelope: Envelope) -> bool:
        return all(h["Message-ID"] != message["Message-ID"] for h in held)


class _OverQuota(Policy):
    def admits(self, mailbox: str, message: Message, held: Sequence[Message],
               envelope: Envelope) -> bool:
        return len(held) < OVER_QUOTA_LIMIT


@dataclass
class _RefuseDuplicate(Policy):
    """Courier `dupfilter`: a body seen before in this server is refused at the final dot."""

    _bodies: set[str] = field(default_factory=set)

    def refusal(self, message: Message) -> Reply | None:
        body = _body_hash(message, Envelope("", ()))
        if body in self._bodies:
            return Reply(550, "5.7.1 Duplicate message rejected")
        self._bodies.add(body)
        return None


class _RewriteMessageId(Policy):
    def rewrite(self, raw: bytes, envelope: Envelope) -> bytes:
        message = _parsed(raw)
        message.replace_header("Message-ID", make_msgid(domain="mx.isp.test"))
        return message.as_bytes()


class _StripReceived(Policy):
    def rewrite(self, raw: bytes, envelope: Envelope) -> bytes:
        message = _parsed(raw)
        del message["Received"]
        return message.as_bytes()


class _ReverseReceived(Policy):
    """Rewrites the trace oldest first, as a store re-serialising its header index might."""

    def rewrite(self, raw: bytes, envelope: Envelope) -> bytes:
        message = _parsed(raw)
        trace = message.get_all("Received", [])
        del message["Received"]
        for value in reversed(trace):
            message["Received"] = value
        return _trace_on_top(message)


class _ApparentlyTo(Policy):
    """Records every envelope recipient of the transaction in an Apparently-To field."""

    def rewrite(self, raw: bytes, envelope: Envelope) -> bytes:
        fields = "".join(f"Apparently-To: <{rcpt}>\r\n" for rcpt in dict.fromkeys(envelope.rcpts))
        return fields.encode() + raw


class _ReceivedForEveryone(Policy):
    def trace_for(self, envelope: Envelope) -> str:
        return "for " + ", ".join(f"<{rcpt}>" for rcpt in dict.fromkeys(envelope.rcpts))


class _ReturnPathFromHeader(Policy):
    """Records the From: address as Return-Path instead of the envelope's MAIL FROM."""

    def return_path(self, mail_from: str, message: Message) -> str:
        return parseaddr(str(message["From"]))[1]


class _StripResent(Policy):
    def rewrite(self, raw: bytes, envelope: Envelope) -> bytes:
        message = _parsed(raw)
        for name in {n for n in message if n.lower().startswith("resent-")}:
            del message[name]
        return message.as_bytes()


def _trace_on_top(message: Message) -> bytes:
    """The message with its Received fields moved back above the rest, in their new order."""
    trace = [(n, v) for n, v in message.items() if n.lower() == "received"]
    rest = [(n, v) for n, v in message.items() if n.lower() != "received"]
    for name in {n for n, _ in trace + rest}:
        del message[name]
    for name, value in trace + rest:
        message[name] = value
    return message.as_bytes()


def _parsed(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=email.policy.SMTP)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _body_hash(message: Message, envelope: Envelope) -> str:
    body = message.get_payload(decode=True)
    return hashlib.sha256(body if isinstance(body, bytes) else b"").hexdigest()


def _retransmission(message: Message, envelope: Envelope) -> tuple[object, ...]:
    """What an identical retransmission repeats: the envelope and the content, except the two
    topmost Received fields (this server's own and the sending hop's), which name the attempt.
    Every earlier hop's field stays in the key, so the same message by another route differs."""
    fields = [(n.lower(), str(v)) for n, v in message.items()]
    attempt = [i for i, (n, _) in enumerate(fields) if n == "received"][:2]
    kept = tuple(f for i, f in enumerate(fields) if i not in attempt)
    return envelope.mail_from, envelope.rcpts, kept, _body_hash(message, envelope)


def _policies() -> dict[str, Callable[[], Policy]]:
    return {
        "reference": Policy,
        "dedup-message-id": lambda: _MailboxHoldsMessageId(
            "dedup-message-id", "the ISP store in the seed report; Gmail's merging", "copy-per-path"),
        "dedup-cyrus": lambda: _Keyed(
            "dedup-cyrus", "Cyrus IMAP 3.x lmtpd duplicatesuppression (on by default)",
            "copy-per-path", key=lambda m, e: (m["Message-ID"], m["Date"])),
        "dedup-resent-aware": lambda: _Keyed(
            "dedup-resent-aware", "Cyrus IMAP 2.x (Resent-Message-ID preferred)", "copy-per-path",
            key=lambda m, e: m["Resent-Message-ID"] or m["Message-ID"]),
        "dedup-content-hash": lambda: _Keyed(
            "dedup-content-hash", "a maildrop or procmail recipe that silently drops a body it has"
            " filed before (a `reformail -D`-style cache keyed on a content hash)", "copy-per-path",
            key=_body_hash),
        "dedup-window": lambda: _Keyed(
            "dedup-window", "procmail `formail -D`: a bounded Message-ID cache that forgets the"
            " oldest ids", "copy-per-path", key=lambda m, e: m["Message-ID"], window=FORMAIL_CACHE),
        "dedup-time-window": lambda: _RecentMessageId(
            "dedup-time-window", "Microsoft Exchange's store (Message-ID within a time window; 1 h to"
            f" 7 days there, {TIME_WINDOW:g} s here)", "copy-per-path"),
        "leak-bcc": lambda: Policy(
            "leak-bcc", "submission servers that forward the Bcc field as written",
            "bcc-not-disclosed", strips_bcc=False),
        "leak-apparently-to": lambda: _ApparentlyTo(
            "leak-apparently-to", "sendmail-style Apparently-To fields naming every RCPT",
            "bcc-not-disclosed"),
        "leak-received-for": lambda: _ReceivedForEveryone(
            "leak-received-for", "servers whose Received `for` clause lists every RCPT of the"
            " transaction", "bcc-not-disclosed"),
        "rewrite-message-id": lambda: _RewriteMessageId(
            "rewrite-message-id", "gateways that mint their own Message-ID", "message-id-preserved"),
        "strip-received": lambda: _StripReceived(
            "strip-received", "privacy filters that drop earlier trace fields", "trace-prepend-only"),
        "reverse-received": lambda: _ReverseReceived(
            "reverse-received", "stores that rewrite the trace oldest first", "trace-prepend-only"),
        "deliver-twice": lambda: Policy(
            "deliver-twice", "delivery rules that file a copy twice (a carbon-copy flag on a"
            " catch-all filter rule)", "no-phantom-copies", copies=2),
        "return-path-from-header": lambda: _ReturnPathFromHeader(
            "return-path-from-header", "delivery agents that take the sender from From:",
            "return-path-is-last-envelope-sender"),
        "strip-resent": lambda: _StripResent(
            "strip-resent", "header normalisers that drop Resent-* blocks", "resent-keeps-message-id"),
        "drop-over-quota": lambda: _OverQuota(
            "drop-over-quota", "stores that accept, then discard over quota", "copy-per-path"),
        "bounce-over-quota": lambda: _OverQuota(
            "bounce-over-quota", "a conforming store: over quota it sends a failure notice",
            bounces_refused=True),
        "refuse-duplicate": lambda: _RefuseDuplicate(
            "refuse-duplicate", "Courier `dupfilter`: a conforming refusal, 5xx at the final dot for"
            " a body it has seen"),
        "dedup-exact": lambda: _Keyed(
            "dedup-exact", "a conforming store that files an identical retransmission (same"
            " envelope, same content) once", key=_retransmission),
    }


POLICY_NAMES = tuple(_policies())
KNOWN_BAD = tuple(name for name, make in _policies().items() if make().breaks)
CONFORMING = tuple(name for name in POLICY_NAMES if name not in KNOWN_BAD)


def policy(name: str) -> Policy:
    """A fresh instance of the named policy."""
    try:
        return _policies()[name]()
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICY_NAMES)}") from None
