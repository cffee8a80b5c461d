"""The reference delivery logic, served in-process or by the embedded server.

One `ReferenceServer` is both the SUT domain's store (mx) and its users'
submission server; a `Policy` changes exactly one of its decisions so the
suite can show it catches that rule.

Messages are parsed with the compat32 policy (fields as plain text, no header
registry), each at most once and only for a policy that decides on content: an
incoming message per transaction, a filed copy when a policy first looks at it --
the server keeps what it filed, so a filing never re-reads its store.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from email import message_from_bytes
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, localtime, make_msgid
from typing import Protocol, overload

from mailconform.specs.content import WIRE
from mailconform.suts.policies import Envelope, Policy
from mailconform.suts.policies import policy as named_policy
from mailconform.suts.wire.replies import Reply

Relay = Callable[[str, list[str], bytes], None]
"""Send (reverse-path, recipients, data) to another domain's server."""


class MailStore(Protocol):
    def file(self, mailbox: str, raw: bytes) -> None: ...


class ReferenceServer:
    def __init__(self, policy: Policy, store: MailStore, relay: Relay,
                 domain: str = "isp.test", hostname: str = "mx.isp.test") -> None:
        self.policy = policy
        self.store = store
        self.relay = relay
        self.domain = domain.lower()
        self.hostname = hostname
        self.aliases: dict[str, tuple[str, ...]] = {}
        self._ids = itertools.count(1)
        self._held: dict[str, Held] = {}
        """What this server filed, per mailbox: what its policy decides on."""

    def forget(self) -> None:
        """Forget every filing (and the policy's duplicate keys) before a new example.

        Every example names fresh mailboxes, so this changes no decision; it keeps a
        long run's memory flat.
        """
        self._held.clear()
        self.policy = named_policy(self.policy.name)

    def is_local(self, address: str) -> bool:
        return address.rpartition("@")[2].lower() == self.domain

    def rcpt(self, address: str) -> Reply:
        """As the domain's mx: take mail for the domain only."""
        if self.is_local(address):
            return Reply(250, "2.1.5 recipient ok")
        return Reply(550, "5.7.1 relaying denied")

    def deliver(self, mail_from: str, rcpts: list[str], data: bytes) -> list[Reply]:
        """File one copy per final mailbox of this transaction (RFC 5321 §3.9)."""
        envelope = Envelope(mail_from, tuple(rcpts))
        stamped = self._stamp(data, envelope)
        message = self._parsed(stamped)
        refusal = self.policy.refusal(message)
        if refusal:
            return [refusal for _ in rcpts]
        for user in self._final_users(rcpts):
            self._file(user, envelope, stamped, message)
        return [Reply(250, "2.0.0 filed") for _ in rcpts]

    def submit(self, mail_from: str, rcpts: list[str], data: bytes) -> list[Reply]:
        """As the users' submission server: strip Bcc, file local copies, relay the rest."""
        envelope = Envelope(mail_from, tuple(rcpts))
        stamped = self._stamp(without_bcc(data) if self.policy.strips_bcc else data, envelope)
        message = self._parsed(stamped)
        refusal = self.policy.refusal(message)
        if refusal:
            return [refusal for _ in rcpts]
        for user in self._final_users([r for r in rcpts if self.is_local(r)]):
            self._file(user, envelope, stamped, message)
        remote = [r for r in rcpts if not self.is_local(r)]
        for _, group in itertools.groupby(sorted(remote, key=_domain), key=_domain):
            self.relay(mail_from, list(group), stamped)
        return [Reply(250, "2.0.0 queued") for _ in rcpts]

    def _final_users(self, rcpts: list[str]) -> list[str]:
        users = (u for r in rcpts for u in self.aliases.get(r.lower(), (r.lower(),)))
        return list(dict.fromkeys(users))

    def _file(self, mailbox: str, envelope: Envelope, data: bytes, message: Message) -> None:
        mail_from = envelope.mail_from
        if not self.policy.admits(mailbox, message, self._held.get(mailbox, Held()), envelope):
            if self.policy.bounces_refused and mail_from:
                self._notify(mail_from, mailbox, data)
            return
        for _ in range(self.policy.copies):
            self._keep(mailbox, with_return_path(self.policy.return_path(mail_from, message),
                                                 self.policy.rewrite(data, envelope)))

    def _keep(self, mailbox: str, raw: bytes) -> None:
        self.store.file(mailbox, raw)
        self._held.setdefault(mailbox, Held()).append(raw)

    def _stamp(self, data: bytes, envelope: Envelope) -> bytes:
        clause = self.policy.trace_for(envelope)
        received = (f"Received: from client.upstream.test (localhost [127.0.0.1])\r\n"
                    f"\tby {self.hostname} with ESMTP id ref{next(self._ids)}"
                    f"{' ' + clause if clause else ''}; {format_datetime(localtime())}\r\n")
        return received.encode() + data

    def _parsed(self, data: bytes) -> Message:
        # A policy that never reads the message (the reference's) is handed a blank one.
        return _parsed(data) if self.policy.reads_content else _UNREAD

    def _notify(self, reverse_path: str, mailbox: str, data: bytes) -> None:
        """Send an RFC 3464 failure notice from the null reverse-path (RFC 5321 §4.5.5)."""
        notice = _failure_notice(self.hostname, reverse_path, mailbox, data)
        if self.is_local(reverse_path):
            self._keep(reverse_path.lower(), with_return_path("", notice))
        else:
            self.relay("", [reverse_path], notice)


class Held(Sequence[Message]):
    """The copies a mailbox holds, each parsed the first time it is looked at."""

    def __init__(self) -> None:
        self._raw: list[bytes] = []
        self._parsed: dict[int, Message] = {}

    def append(self, raw: bytes) -> None:
        self._raw.append(raw)

    def __len__(self) -> int:
        return len(self._raw)

    @overload
    def __getitem__(self, index: int) -> Message: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Message]: ...

    def __getitem__(self, index: int | slice) -> Message | Sequence[Message]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        index = range(len(self))[index]
        if index not in self._parsed:
            self._parsed[index] = _parsed(self._raw[index])
        return self._parsed[index]


def without_bcc(data: bytes) -> bytes:
    """The message without its Bcc fields (RFC 5322 §3.6.3), every other byte as it came: an
    MSA drops those lines and re-folds nothing it keeps."""
    lines = iter(data.splitlines(keepends=True))
    kept: list[bytes] = []
    dropping = False
    for line in lines:
        if line in (b"\r\n", b"\n"):  # the header ends: the body stays as it is
            kept.append(line)
            break
        if line[:1] not in (b" ", b"\t"):  # a field's first line; the others continue it
            dropping = line.split(b":", 1)[0].strip().lower() == b"bcc"
        if not dropping:
            kept.append(line)
    return b"".join(kept) + b"".join(lines)


def with_return_path(reverse_path: str, data: bytes) -> bytes:
    """The copy as final delivery files it: the reverse-path recorded on top (RFC 5321 §4.4)."""
    return f"Return-Path: <{reverse_path}>\r\n".encode() + data


def file_at_remote_hosts(store: MailStore, mail_from: str, rcpts: list[str], data: bytes) -> None:
    """The remote hosts the suite plays: file what the SUT relays, as final delivery; a
    recipient named twice in one transaction gets one copy, as real MTAs merge them."""
    for rcpt in dict.fromkeys(r.lower() for r in rcpts):
        store.file(rcpt, with_return_path(mail_from, data))


def _failure_notice(hostname: str, reverse_path: str, mailbox: str, data: bytes) -> bytes:
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = f"MAILER-DAEMON@{hostname}"
    report["To"] = reverse_path
    report["Subject"] = "Undelivered mail returned to sender"
    report["Date"] = format_datetime(localtime())
    report["Message-ID"] = make_msgid(domain=hostname)
    report.attach(MIMEText(f"The mailbox {mailbox} is full; your message was not filed.\n"))
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = f"dns; {hostname}"
    per_recipient["Final-Recipient"] = f"rfc822; {mailbox}"
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = "5.2.2"
    status = Message()
    status.set_type("message/delivery-status")
    status.set_payload([per_message, per_recipient])
    report.attach(status)
    headers = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    report.attach(MIMEText(headers.decode("ascii", "replace") + "\n", "rfc822-headers"))
    return report.as_bytes()


_UNREAD = Message()


def _parsed(raw: bytes) -> Message:
    return message_from_bytes(raw, policy=WIRE)


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()
