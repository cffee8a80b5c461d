"""Named delivery policies: the reference behaviour and known-bad rules seen in the wild.

Each known-bad policy reproduces a real system's rule so the self-tests can
prove the suite catches it; `breaks` names the invariant it violates.
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

OVER_QUOTA_LIMIT = 2
"""Mailbox size (in messages) at which the quota policies stop filing."""
TIME_WINDOW = 1.0
"""Seconds `dedup-time-window` remembers a Message-ID: short, so a test can measure it."""


@dataclass
class Policy:
    """The reference behaviour; known-bad policies override one decision each."""

    name: str = "reference"
    found_in: str = "the reference delivery model"
    breaks: str | None = None
    strips_bcc: bool = True
    bounces_refused: bool = False
    """When a copy is not filed, send a failure notice (conforming) instead of dropping it."""

    copies: int = 1
    """How many times each admitted copy is filed."""

    def admits(self, mailbox: str, message: Message, held: Sequence[Message]) -> bool:
        return True

    def return_path(self, mail_from: str, message: Message) -> str:
        return mail_from

    def rewrite(self, raw: bytes) -> bytes:
        """The copy as filed (known-bad policies change it)."""
        return raw


@dataclass
class _Keyed(Policy):
    """Drop a copy whose key was seen before in the same mailbox, however long ago."""

    key: Callable[[Message], object] = lambda m: None
    window: int | None = None
    _seen: dict[str, deque[object]] = field(default_factory=dict)

    def admits(self, mailbox: str, message: Message, held: Sequence[Message]) -> bool:
        seen = self._seen.setdefault(mailbox, deque(maxlen=self.window))
        key = self.key(message)
        if key in seen:
            return False
        seen.append(key)
        return True


@dataclass
class _RecentMessageId(Policy):
    """Drop a copy whose Message-ID was filed in the same mailbox less than `window` seconds ago."""

    window: float = TIME_WINDOW
    _arrivals: dict[tuple[str, object], float] = field(default_factory=dict)

    def admits(self, mailbox: str, message: Message, held: Sequence[Message]) -> bool:
        now = time.monotonic()
        key = (mailbox, message["Message-ID"])
        if now - self._arrivals.get(key, -self.window) < self.window:
            return False
        self._arrivals[key] = now
        return True


class _MailboxHoldsMessageId(Policy):
    def admits(self, mailbox: str, message: Message, held: Sequence[Message]) -> bool:
        return all(h["Message-ID"] != message["Message-ID"] for h in held)


class _OverQuota(Policy):
    def admits(self, mailbox: str, message: Message, held: Sequence[Message]) -> bool:
        return len(held) < OVER_QUOTA_LIMIT


class _RewriteMessageId(Policy):
    def rewrite(self, raw: bytes) -> bytes:
        message = _parsed(raw)
        message.replace_header("Message-ID", make_msgid(domain="mx.isp.test"))
        return message.as_bytes()


class _StripReceived(Policy):
    def rewrite(self, raw: bytes) -> bytes:
        message = _parsed(raw)
        del message["Received"]
        return message.as_bytes()


class _ReturnPathFromHeader(Policy):
    """Records the From: address as Return-Path instead of the envelope's MAIL FROM."""

    def return_path(self, mail_from: str, message: Message) -> str:
        return parseaddr(str(message["From"]))[1]


class _StripResent(Policy):
    def rewrite(self, raw: bytes) -> bytes:
        message = _parsed(raw)
        for name in {n for n in message if n.lower().startswith("resent-")}:
            del message[name]
        return message.as_bytes()


def _parsed(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=email.policy.SMTP)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _body_hash(message: Message) -> str:
    body = message.get_payload(decode=True)
    return hashlib.sha256(body if isinstance(body, bytes) else b"").hexdigest()


def _policies() -> dict[str, Callable[[], Policy]]:
    return {
        "reference": Policy,
        "dedup-message-id": lambda: _MailboxHoldsMessageId(
            "dedup-message-id", "the ISP store in the seed report; Gmail's merging", "copy-per-path"),
        "dedup-cyrus": lambda: _Keyed(
            "dedup-cyrus", "Cyrus IMAP 3.x lmtpd duplicatesuppression (on by default)",
            "copy-per-path", key=lambda m: (m["Message-ID"], m["Date"])),
        "dedup-resent-aware": lambda: _Keyed(
            "dedup-resent-aware", "Cyrus IMAP 2.x (Resent-Message-ID preferred)", "copy-per-path",
            key=lambda m: m["Resent-Message-ID"] or m["Message-ID"]),
        "dedup-content-hash": lambda: _Keyed(
            "dedup-content-hash", "Courier dupfilter (body hash)", "copy-per-path", key=_body_hash),
        "dedup-window": lambda: _Keyed(
            "dedup-window", "procmail `formail -D` bounded Message-ID cache", "copy-per-path",
            key=lambda m: m["Message-ID"], window=4),
        "dedup-time-window": lambda: _RecentMessageId(
            "dedup-time-window", "Microsoft Exchange's store (Message-ID within a time window; 1 h to"
            f" 7 days there, {TIME_WINDOW:g} s here)", "copy-per-path"),
        "leak-bcc": lambda: Policy(
            "leak-bcc", "submission servers that forward the Bcc field as written",
            "bcc-not-disclosed", strips_bcc=False),
        "rewrite-message-id": lambda: _RewriteMessageId(
            "rewrite-message-id", "gateways that mint their own Message-ID", "message-id-preserved"),
        "strip-received": lambda: _StripReceived(
            "strip-received", "privacy filters that drop earlier trace fields", "trace-prepend-only"),
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
    }


POLICY_NAMES = tuple(_policies())
KNOWN_BAD = tuple(name for name, make in _policies().items() if make().breaks)


def policy(name: str) -> Policy:
    """A fresh instance of the named policy."""
    try:
        return _policies()[name]()
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICY_NAMES)}") from None
