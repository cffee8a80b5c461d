"""Inject mail transactions over SMTP or LMTP, playing the upstream MTA.

Envelopes are explicit and the data is sent as given (only CRLF-normalised and
dot-stuffed). LMTP's per-recipient replies after the final dot (RFC 2033) are
read here, since `smtplib.LMTP` reads only one.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from mailconform.suts.wire.replies import ProtocolError, Reply, TransactionReply

DEFAULT_PORTS = {"smtp": 25, "lmtp": 24}
_LINE_ENDING = re.compile(rb"\r\n|\r|\n")
_LINE_START_DOT = re.compile(rb"^\.", re.MULTILINE)


def _completion(code: int) -> bool:
    return code // 100 in (2, 4, 5)


def _data_go_ahead(code: int) -> bool:
    return code == 354 or code // 100 in (4, 5)


def wire_body(data: bytes) -> bytes:
    """`data` as sent after DATA: CRLF line endings, dot-stuffed, then the final dot line."""
    body = _LINE_START_DOT.sub(b"..", _LINE_ENDING.sub(b"\r\n", data))
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


_OPTIONS = frozenset({"starttls", "insecure"})


@dataclass(frozen=True)
class Endpoint:
    """Where a server listens: a TCP (host, port) or a Unix socket path (LMTP only).

    `?starttls` upgrades the connection before anything else is said (a submission
    port); `?insecure` accepts a self-signed certificate.
    """

    url: str
    protocol: Literal["smtp", "lmtp"]
    address: tuple[str, int] | str
    starttls: bool = False
    insecure: bool = False

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        options = parse_qs(parts.query, keep_blank_values=True)
        if not _OPTIONS.issuperset(options):
            raise ValueError(f"{url}: unknown options {sorted(set(options) - _OPTIONS)};"
                             f" known: {sorted(_OPTIONS)}")
        tls = {"starttls": "starttls" in options, "insecure": "insecure" in options}
        if parts.scheme == "smtp":
            protocol: Literal["smtp", "lmtp"] = "smtp"
        elif parts.scheme == "lmtp":
            protocol = "lmtp"
        else:
            raise ValueError(f"not an smtp:// or lmtp:// URL: {url!r}")
        if parts.hostname:
            return cls(url, protocol, (parts.hostname, parts.port or DEFAULT_PORTS[protocol]), **tls)
        if protocol == "lmtp" and parts.path.startswith("/"):
            return cls(url, protocol, parts.path, **tls)
        raise ValueError(f"expected smtp://HOST:PORT, lmtp://HOST:PORT or lmtp:/socket/path, got {url!r}")

    def connect(self, timeout: float) -> socket.socket:
        if isinstance(self.address, tuple):
            return socket.create_connection(self.address, timeout)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.address)
        except OSError:
            sock.close()
            raise
        return sock


class Transcript(list[str]):
    """Dialogue lines, each with the wall-clock time it was written."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, line: str) -> None:
        self.times.append(time.time())
        super().append(line)

    def extend(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.append(line)

    def adopt(self, reply: TransactionReply) -> None:
        """Add another transaction's lines, keeping the times they were written."""
        times = reply.times if len(reply.times) == len(reply.transcript) else [time.time()] * len(
            reply.transcript)
        super().extend(reply.transcript)
        self.times.extend(times)


class _Dropped(ProtocolError):
    """The server closed the connection (the one failure worth a reconnect)."""


class _Wire:
    """One connection: commands out, replies in, all logged to a transcript."""

    def __init__(self, endpoint: Endpoint, *, sut: str, connect_timeout: float,
                 reply_timeout: float, transcript: Transcript) -> None:
        self.sut = sut
        self.transcript = transcript
        self.idle = True
        """No transaction open: fresh, reset, or the last one ended at the final dot (RFC 5321
        §4.1.1.4), so the next MAIL needs no RSET before it."""
        self._reply_timeout = reply_timeout
        # smtplib reads replies (multi-line, length-capped); the socket is ours so that
        # connecting and reading get separate timeouts and Unix sockets work for LMTP.
        # local_hostname stops smtplib from resolving our own name; we send EHLO ourselves.
        self._smtp = smtplib.SMTP(local_hostname="unused")
        transcript.append(f"-- connect {endpoint.url}")
        try:
            sock = endpoint.connect(connect_timeout)
        except OSError as err:
            raise ProtocolError(sut, "connect", transcript,
                                f"nothing accepts connections at {endpoint.url} ({err})") from err
        sock.settimeout(reply_timeout)
        self._smtp.sock = sock
        # smtplib.starttls() checks the certificate against the host connect() would have kept.
        self._smtp._host = endpoint.address[0] if isinstance(endpoint.address, tuple) else ""  # type: ignore[attr-defined]
        try:
            greeting = self.read("greeting", _completion)
            if greeting.code != 220:
                raise ProtocolError(sut, "greeting", transcript, f"greeting is {greeting.code}, not 220")
        except ProtocolError:
            self.close()
            raise

    def command(self, line: str, valid: Callable[[int], bool] = _completion) -> Reply:
        self.transcript.append(f"C: {line}")
        self._send(line, (line + "\r\n").encode("ascii"))
        return self.read(line, valid)

    def send_data(self, data: bytes) -> None:
        self.transcript.append(f"C: ({len(data)} bytes of message data)")
        self.transcript.append("C: .")
        self._send("message data", wire_body(data))

    def read(self, step: str, valid: Callable[[int], bool]) -> Reply:
        try:
            code, raw_text = self._smtp.getreply()
        except smtplib.SMTPServerDisconnected as err:
            if isinstance(err.__context__, TimeoutError):
                raise ProtocolError(self.sut, step, self.transcript,
                                    f"no reply within {self._reply_timeout:g} s") from err
            raise _Dropped(self.sut, step, self.transcript, "the server closed the connection") from err
        except smtplib.SMTPResponseException as err:
            raise ProtocolError(self.sut, step, self.transcript, f"garbage reply: {err}") from err
        text = raw_text.decode("utf-8", "backslashreplace")
        if not 200 <= code <= 599:
            self.transcript.append(f"S: (no reply code) ...{text}")
            raise ProtocolError(self.sut, step, self.transcript, "garbage reply (no reply code)")
        lines = text.split("\n")
        self.transcript.extend(
            f"S: {code}{'-' if i < len(lines) - 1 else ' '}{line}" for i, line in enumerate(lines))
        if not valid(code):
            raise ProtocolError(self.sut, step, self.transcript, f"unexpected reply {code}")
        return Reply(code, text)

    def secure_and_login(self, endpoint: Endpoint, helo: str, login: Login | None) -> None:
        """STARTTLS and AUTH, as smtplib does them (it picks PLAIN, LOGIN or CRAM-MD5)."""
        smtp, step = self._smtp, "EHLO"
        try:
            if endpoint.starttls:
                step = "STARTTLS"
                context = ssl.create_default_context()
                if endpoint.insecure:
                    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                self.transcript.append("C: STARTTLS")
                smtp.ehlo(helo)
                code, text = smtp.starttls(context=context)
                self.transcript.append(f"S: {code} {text.decode('utf-8', 'replace')}")
                step = "EHLO"
                self.transcript.append(f"C: EHLO {helo} (inside TLS)")
                smtp.ehlo(helo)
            if login is not None:
                step = "AUTH"
                smtp.ehlo_or_helo_if_needed()
                self.transcript.append(f"C: AUTH (as {login.user})")
                code, text = smtp.login(login.user, login.password)
                self.transcript.append(f"S: {code} {text.decode('utf-8', 'replace')}")
        except smtplib.SMTPResponseException as err:
            said = err.smtp_error.decode("utf-8", "replace") if isinstance(err.smtp_error, bytes) \
                else str(err.smtp_error)
            self.transcript.append(f"S: {err.smtp_code} {said}")
            raise ProtocolError(self.sut, step, self.transcript, f"{step} refused") from err
        except (smtplib.SMTPException, OSError) as err:
            raise ProtocolError(self.sut, step, self.transcript, f"{step} failed: {err}") from err

    def reset(self) -> bool:
        """Send RSET; False (and the connection closed) if the server had dropped it."""
        try:
            reply = self.command("RSET")
        except _Dropped:
            return False
        if reply.code == 421:
            self.close()
            return False
        if reply.code != 250:
            raise ProtocolError(self.sut, "RSET", self.transcript, f"RSET answered {reply.code}")
        self.idle = True
        return True

    def close(self) -> None:
        self._smtp.close()

    def quit(self) -> None:
        """Say QUIT without waiting for 221 (some servers answer it late), then close."""
        with contextlib.suppress(_Dropped):
            self._send("QUIT", b"QUIT\r\n")
        self.close()

    def _send(self, step: str, payload: bytes) -> None:
        try:
            self._smtp.send(payload)
        except smtplib.SMTPServerDisconnected as err:
            raise _Dropped(self.sut, step, self.transcript, "the server closed the connection") from err


@dataclass(frozen=True)
class Login:
    """SMTP AUTH credentials (RFC 4954), for a submission server (RFC 6409 §4.3)."""

    user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Retry:
    """How an upstream MTA treats a 4xx (RFC 5321 §4.5.4.1): try again later, a bounded number
    of times. The wait doubles after each attempt: 0.25, 0.5, 1, 2 s by default -- enough for a
    greylisting store on loopback, which accepts the first retry."""

    attempts: int = 5
    delay: float = 0.25


class Injector:
    """Sends mail transactions to one SMTP or LMTP server over a reused connection."""

    def __init__(self, url: str, *, sut: str, connect_timeout: float = 5,
                 reply_timeout: float = 30, helo: str = "upstream.test",
                 retry: Retry = Retry(attempts=1), login: Login | None = None) -> None:
        self.endpoint = Endpoint.parse(url)
        self.sut = sut
        self.helo = helo
        self.retry = retry
        self.login = login
        self.last_reply: str | None = None
        """The last reply line this server sent, for error messages."""
        self._connect_timeout = connect_timeout
        self._reply_timeout = reply_timeout
        self._wire: _Wire | None = None

    def __enter__(self) -> Injector:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def send(self, mail_from: str, rcpts: Sequence[str], data: bytes) -> TransactionReply:
        """Run one transaction (mail_from "" is <>); refusals are replies, breakage a ProtocolError.

        Recipients refused with a 4xx (at MAIL, RCPT or the final dot) are tried again in a new
        transaction on a new connection, as an upstream MTA's later attempt would be (a 4xx may be
        the connection's own limit: OpenSMTPD answers 452 at MAIL once one connection has sent 100
        messages), up to `retry.attempts` in all; each recipient's replies are those of its last
        attempt, so one finally accepted owes a copy and one still refused is a refusal.
        """
        final: dict[str, TransactionReply] = {}
        transcript = Transcript()
        pending = list(rcpts)
        for attempt in range(1, self.retry.attempts + 1):
            reply = self._send_once(mail_from, pending, data)
            transcript.adopt(reply)
            final.update(dict.fromkeys(pending, reply))
            pending = [r for r in dict.fromkeys(pending) if _temporary(reply, r)]
            if not pending or attempt == self.retry.attempts:
                break
            wait = self.retry.delay * 2 ** (attempt - 1)
            transcript.append(f"-- 4xx for {', '.join(pending)}: trying again in {wait:g} s on a new"
                              f" connection (attempt {attempt + 1} of {self.retry.attempts})")
            self.close()
            time.sleep(wait)
        return _merged(final, transcript)

    def _send_once(self, mail_from: str, rcpts: Sequence[str], data: bytes) -> TransactionReply:
        transcript = Transcript()
        try:
            reply = self._reused_or_new(transcript, mail_from, rcpts, data)
            if _closing(reply):
                # 421 before DATA: the server is closing the channel (RFC 5321 §3.8), e.g. at a
                # per-connection message limit, and nothing was accepted: start afresh, once.
                transcript.append("-- 421 before DATA: reconnecting once")
                reply = self._transaction(self._ready(transcript), mail_from, rcpts, data)
            return reply
        except ProtocolError:
            self._forget_connection()  # its state is unknown now
            raise
        finally:
            self.last_reply = next((line[3:] for line in reversed(transcript) if line.startswith("S: ")),
                                   self.last_reply)

    def close(self) -> None:
        if self._wire is not None:
            self._wire.quit()
            self._wire = None

    def _reused_or_new(self, transcript: Transcript, mail_from: str, rcpts: Sequence[str],
                       data: bytes) -> TransactionReply:
        """The transaction on the open connection; on a new one if the server had closed it
        while idle (found at MAIL, before anything was accepted)."""
        unreset = self._wire is not None and self._wire.idle
        try:
            return self._transaction(self._ready(transcript), mail_from, rcpts, data)
        except _Dropped as dropped:
            if not (unreset and dropped.step.startswith("MAIL")):
                raise
        transcript.append("-- the server had closed the connection; reconnecting once")
        self._forget_connection()
        return self._transaction(self._ready(transcript), mail_from, rcpts, data)

    def _ready(self, transcript: Transcript) -> _Wire:
        """The open connection, idle or reset, or a new one if the server dropped the old one."""
        if self._wire is not None:
            self._wire.transcript = transcript
            if self._wire.idle or self._wire.reset():
                return self._wire
            transcript.append("-- the server had closed the connection; reconnecting once")
        self._wire = _Wire(self.endpoint, sut=self.sut, connect_timeout=self._connect_timeout,
                           reply_timeout=self._reply_timeout, transcript=transcript)
        hello = "LHLO" if self.endpoint.protocol == "lmtp" else "EHLO"
        if self.endpoint.starttls or self.login:
            self._wire.secure_and_login(self.endpoint, self.helo, self.login)
            return self._wire
        reply = self._wire.command(f"{hello} {self.helo}")
        if reply.code != 250:
            raise ProtocolError(self.sut, hello, transcript, f"{hello} answered {reply.code}")
        return self._wire

    def _transaction(self, wire: _Wire, mail_from: str, rcpts: Sequence[str],
                     data: bytes) -> TransactionReply:
        wire.idle = False
        mail = wire.command(f"MAIL FROM:<{mail_from}>")
        rcpt_replies: dict[str, Reply] = {}
        accepted: list[str] = []  # one entry per accepted RCPT command, repeats included
        if mail.accepted:
            for rcpt in rcpts:
                reply = wire.command(f"RCPT TO:<{rcpt}>")
                rcpt_replies.setdefault(rcpt, reply)
                if reply.code == 421:
                    break
                if reply.accepted:
                    accepted.append(rcpt)
        if mail.code == 421 or any(r.code == 421 for r in rcpt_replies.values()):
            self._forget_connection()
            return TransactionReply(mail, rcpt_replies, {}, tuple(wire.transcript),
                                    tuple(wire.transcript.times))
        if not accepted:
            if not wire.reset():
                self._wire = None
            return TransactionReply(mail, rcpt_replies, {}, tuple(wire.transcript),
                                    tuple(wire.transcript.times))
        finals = self._data(wire, data, accepted)
        data_replies: dict[str, Reply] = {}
        for rcpt, final in zip(accepted, finals, strict=True):
            data_replies.setdefault(rcpt, final)
        return TransactionReply(mail, rcpt_replies, data_replies, tuple(wire.transcript),
                                tuple(wire.transcript.times))

    def _data(self, wire: _Wire, data: bytes, accepted: list[str]) -> list[Reply]:
        """The final-dot reply for each accepted RCPT, in order."""
        go_ahead = wire.command("DATA", _data_go_ahead)
        if go_ahead.code != 354:
            return [go_ahead] * len(accepted)
        wire.send_data(data)
        if self.endpoint.protocol == "smtp":
            finals = [wire.read("final dot", _completion)] * len(accepted)
        else:
            finals = [wire.read(f"final dot (reply {i} of {len(accepted)}, for <{rcpt}>)", _completion)
                      for i, rcpt in enumerate(accepted, 1)]
        wire.idle = True
        return finals

    def _forget_connection(self) -> None:
        if self._wire is not None:
            self._wire.close()
            self._wire = None


def _deciding(reply: TransactionReply, rcpt: str) -> Reply | None:
    """The reply that settled `rcpt`'s fate in this transaction; None if it was never sent."""
    if not reply.mail.accepted:
        return reply.mail
    rcpt_reply = reply.rcpts.get(rcpt)
    if rcpt_reply is None or not rcpt_reply.accepted:
        return rcpt_reply
    return reply.data.get(rcpt)


def _temporary(reply: TransactionReply, rcpt: str) -> bool:
    deciding = _deciding(reply, rcpt)
    return deciding is None or 400 <= deciding.code < 500


def _merged(final: dict[str, TransactionReply], transcript: Transcript) -> TransactionReply:
    """One reply per recipient, each from its last attempt; MAIL's from an attempt that delivered."""
    replies = list(final.values())
    mail = next((r.mail for r in replies if any(r.delivered_to(a) for a in r.data)), replies[-1].mail)
    rcpts: dict[str, Reply] = {}
    data: dict[str, Reply] = {}
    for rcpt, reply in final.items():
        if rcpt in reply.rcpts:
            rcpts[rcpt] = reply.rcpts[rcpt]
        if rcpt in reply.data:
            data[rcpt] = reply.data[rcpt]
    return TransactionReply(mail, rcpts, data, tuple(transcript), tuple(transcript.times))


def _closing(reply: TransactionReply) -> bool:
    return not reply.data and (reply.mail.code == 421 or any(r.code == 421 for r in reply.rcpts.values()))


def check_reachable(url: str, *, sut: str, timeout: float) -> None:
    """Raise ProtocolError unless a server at `url` accepts a connection and greets with 220."""
    _Wire(Endpoint.parse(url), sut=sut, connect_timeout=timeout, reply_timeout=timeout,
          transcript=Transcript()).quit()
