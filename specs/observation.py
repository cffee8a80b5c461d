"""What a SUT did: the replies it gave, the copies it filed, the notices it sent.

Each stored copy is parsed once, with the compat32 policy: the invariants read a
few fields as text, so the header registry's parsing buys nothing; values are
unfolded here, and RFC 2047 encoded words decoded, as the registry would.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from functools import cached_property

_HEADERS = BytesParser()  # compat32, as message_from_bytes
_ADDRESS = re.compile(r";\s*<?([^<>\s;]+@[^<>\s;]+)>?")


@dataclass(frozen=True)
class ObservedCopy:
    mailbox: str
    raw: bytes
    path: str | None
    """The topmost suite transaction id in the copy's trace, if any."""
    folder: str = "INBOX"
    """Where in the mailbox the copy was filed (a Maildir++ or IMAP folder name)."""

    @cached_property
    def message(self) -> Message:
        return message_from_bytes(self.raw)

    @cached_property
    def fields(self) -> Mapping[str, tuple[str, tuple[str, ...]]]:
        """Lower-cased field name -> (the name as first written, every value as text, in order):
        one pass over the header, where looking each name up would scan it again."""
        found: dict[str, tuple[str, list[str]]] = {}
        for name, value in self.message.items():
            found.setdefault(name.lower(), (name, []))[1].append(_text(value))
        return {key: (name, tuple(values)) for key, (name, values) in found.items()}

    def values(self, name: str) -> list[str]:
        return list(self.fields.get(name.lower(), ("", ()))[1])


@dataclass(frozen=True)
class Notice:
    """A delivery-failure notice (RFC 3464) found in a mailbox the suite reads."""

    mailbox: str
    recipients: frozenset[str]
    message_id: str | None
    raw: bytes = b""


@dataclass(frozen=True)
class Observation:
    copies: tuple[ObservedCopy, ...]
    notices: tuple[Notice, ...] = ()
    accepted: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Injection id -> envelope recipients the SUT took responsibility for (2xx at the dot)."""
    replies: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Injection id -> recipient -> the SUT's last reply, for reports."""
    waited: float = 0.0
    """Seconds between the SUT's last reply in the play and the read of the mailboxes."""
    transcripts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Injection id -> the client/server dialogue of that transaction, timed, where there was one."""

    def copies_in(self, mailbox: str) -> list[ObservedCopy]:
        return [c for c in self.copies if c.mailbox == mailbox]


def observe(mailboxes: Mapping[str, Sequence[bytes]], trace_id: Callable[[str], str | None],
            accepted: Mapping[str, frozenset[str]],
            replies: Mapping[str, Mapping[str, str]] | None = None,
            folders: Mapping[str, Sequence[str]] | None = None) -> Observation:
    """Sort what the mailboxes hold into copies and failure notices; `folders` names, per mailbox,
    the folder each message was filed in (INBOX when not given); `trace_id` finds the example's
    transaction id in a Received field (`Naming.transaction_id_in`)."""
    copies: list[ObservedCopy] = []
    notices: list[Notice] = []
    for mailbox, raws in mailboxes.items():
        filed_in = (folders or {}).get(mailbox) or ["INBOX"] * len(raws)
        for raw, folder in zip(raws, filed_in, strict=True):
            parsed = _HEADERS.parsebytes(raw, headersonly=True)  # the body only matters in a notice
            notice = _as_notice(mailbox, message_from_bytes(raw)) if _is_report(parsed) else None
            if notice:
                notices.append(replace(notice, raw=raw))
            else:
                copy = ObservedCopy(mailbox, raw, _path(parsed, trace_id), folder)
                copy.__dict__["message"] = parsed  # parsed once: seed the cached property
                copies.append(copy)
    return Observation(tuple(copies), tuple(notices), dict(accepted), dict(replies or {}))


def _path(parsed: Message, trace_id: Callable[[str], str | None]) -> str | None:
    for received in parsed.get_all("Received", []):
        found = trace_id(_text(received))
        if found:
            return found
    return None


def _is_report(parsed: Message) -> bool:
    return (parsed.get_content_type() == "multipart/report"
            and parsed.get_param("report-type") == "delivery-status")


def _as_notice(mailbox: str, parsed: Message) -> Notice | None:
    recipients: set[str] = set()
    message_id = None
    for part in parsed.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            for block in part.get_payload():
                assert isinstance(block, Message)
                for name in ("Final-Recipient", "Original-Recipient"):
                    found = _ADDRESS.search(str(block.get(name, "")))
                    if found:
                        recipients.add(found.group(1).lower())
        elif kind in ("message/rfc822", "text/rfc822-headers"):
            message_id = message_id or _returned_message_id(part)
    return Notice(mailbox, frozenset(recipients), message_id)


def _returned_message_id(part: Message) -> str | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        returned = payload[0]
    else:
        raw = part.get_payload(decode=True)
        returned = message_from_bytes(raw if isinstance(raw, bytes) else b"")
    value = returned.get("Message-ID")
    return _text(value) if value else None


def _text(value: object) -> str:
    """A field's value as one line, encoded words decoded."""
    text = str(value)
    if "=?" in text:  # not a well-formed encoded word: keep the text as it came
        with suppress(HeaderParseError, LookupError, UnicodeError):
            text = str(make_header(decode_header(text)))
    return _unfold(text)


def _unfold(value: str) -> str:
    return " ".join(value.split())
