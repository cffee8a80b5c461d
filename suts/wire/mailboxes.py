"""Read a mailbox back by URL: Maildir (with Maildir++ folders), POP3 (INBOX only) or IMAP (every folder).

URL forms: maildir:/abs/path, pop3://user@host:port, pop3s://..., imap://...,
imaps://...; `?starttls` upgrades a plain connection, `?insecure` skips
certificate checks (self-signed test servers). The user may be
percent-encoded (bob%40isp.test). Network readers return messages with CRLF
line endings, as the protocols carry them; Maildir returns the file bytes.
"""

from __future__ import annotations

import contextlib
import functools
import imaplib
import mailbox
import math
import os
import poplib
import re
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

_LIST_REPLY = re.compile(r'\((?P<flags>[^)]*)\)\s+(?:"[^"]*"|NIL)\s+(?P<name>.+)$')
"""One LIST response: (flags) delimiter name; the name quoted or an atom (literals are joined)."""
DEFAULT_PORTS = {"pop3": 110, "pop3s": 995, "imap": 143, "imaps": 993}
_OPTIONS = frozenset({"starttls", "insecure"})


INBOX = "INBOX"
_T = TypeVar("_T")

Filed = tuple[str, bytes]
"""(folder, raw message): where in the mailbox a message was filed."""


class MailboxReader(Protocol):
    def messages(self) -> list[bytes]:
        """Every message in the INBOX, raw, oldest first; changes nothing."""
        ...

    def filed(self) -> list[Filed]:
        """Every message in every folder the protocol shows, INBOX first, each folder oldest first."""
        ...

    def clear(self) -> None:
        """Delete every message, in every folder."""
        ...

    def close(self) -> None:
        """End a session kept open between reads; a later read opens a new one."""
        ...


class MailboxError(Exception):
    """A mailbox could not be read or cleared; names the URL, never the password."""


@dataclass(frozen=True)
class Account:
    """A POP3/IMAP login; `url` is the password-free form used in messages."""

    url: str
    host: str
    port: int
    user: str
    password: str
    implicit_tls: bool
    starttls: bool
    insecure: bool

    @property
    def tls(self) -> ssl.SSLContext:
        return _tls_context(self.insecure)

    @classmethod
    def parse(cls, url: str, password: str | None) -> Account:
        parts = urlsplit(url)
        options = parse_qs(parts.query, keep_blank_values=True)
        host_port = parts.netloc.rpartition("@")[2]
        login = f"{parts.username}@" if parts.username else ""
        shown = parts._replace(netloc=login + host_port).geturl()
        if not _OPTIONS.issuperset(options):
            raise ValueError(f"{shown}: unknown options {sorted(set(options) - _OPTIONS)}")
        implicit_tls = parts.scheme.endswith("s")
        if implicit_tls and "starttls" in options:
            raise ValueError(f"{shown}: ?starttls makes no sense with implicit TLS")
        if not parts.username or not parts.hostname:
            raise ValueError(f"expected {parts.scheme}://user@host[:port], got {shown}")
        secret = password if password is not None else unquote(parts.password or "")
        if not secret:
            raise ValueError(f"{shown}: no password given")
        return cls(shown, parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme],
                   unquote(parts.username), secret, implicit_tls, "starttls" in options,
                   "insecure" in options)


@functools.cache
def _tls_context(insecure: bool) -> ssl.SSLContext:
    """One context per kind, made on first use: loading the CA store takes ~25 ms, and plain
    connections (most test servers) never need it."""
    tls = ssl.create_default_context()
    if insecure:
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    return tls


class MaildirMailbox:
    """A Maildir's new/ and cur/, and its Maildir++ folders (`.Name/`, shown as "Name");
    a Maildir that does not exist yet is empty."""

    def __init__(self, path: str) -> None:
        self.path = path

    def messages(self) -> list[bytes]:
        maildir = self._open()
        if maildir is None:
            return []
        arrived = self._arrival_times(maildir.colon)
        keys = sorted(maildir.iterkeys(), key=lambda key: (arrived.get(key, math.inf), key))
        return [maildir.get_bytes(key) for key in keys]

    def filed(self) -> list[Filed]:
        found = [(INBOX, raw) for raw in self.messages()]
        for folder in self._folders():
            found += [(folder, raw) for raw in MaildirMailbox(self._folder_path(folder)).messages()]
        return found

    def clear(self) -> None:
        maildir = self._open()
        if maildir is not None:
            maildir.clear()
        for folder in self._folders():
            MaildirMailbox(self._folder_path(folder)).clear()

    def close(self) -> None:
        """Nothing is held open: every read lists the directories afresh."""

    def _folders(self) -> list[str]:
        """Maildir++ folder names: the `.Name` directories beside new/ and cur/."""
        try:
            entries = os.scandir(self.path)
        except FileNotFoundError:
            return []
        with entries:
            return sorted(entry.name[1:] for entry in entries
                          if entry.name.startswith(".") and entry.name not in (".", "..") and entry.is_dir())

    def _folder_path(self, folder: str) -> str:
        return os.path.join(self.path, "." + folder)

    def _arrival_times(self, colon: str) -> dict[str, float]:
        """Each message's mtime by Maildir key (its file name before the info part).

        File names order arrivals only to the second, so the time of delivery is
        the file's mtime (a move from new/ to cur/ keeps it); read with scandir
        because mailbox's own route, get_message().get_date(), parses every message.
        """
        return {entry.name.split(colon, 1)[0]: entry.stat().st_mtime_ns
                for folder in ("new", "cur")
                for entry in os.scandir(os.path.join(self.path, folder))}

    def _open(self) -> mailbox.Maildir | None:
        """The Maildir, or None while it does not exist (or is only half created)."""
        if not all(os.path.isdir(os.path.join(self.path, folder)) for folder in ("new", "cur")):
            return None
        return mailbox.Maildir(self.path, create=False)


class Pop3Mailbox:
    """A POP3 maildrop: RETR everything and QUIT (no DELE) to read; DELE to clear.

    POP3 shows the INBOX only (RFC 1939 has no folders): a copy filed elsewhere is invisible.
    Every read is its own session: a POP3 session lists the maildrop as it was at login
    (RFC 1939 §4), so a kept one would never show a copy filed since.
    """

    def __init__(self, account: Account, timeout: float) -> None:
        self.account = account
        self.timeout = timeout

    def messages(self) -> list[bytes]:
        with self._session("reading") as pop:
            count, _ = pop.stat()
            # retr() strips CRLF and undoes dot-stuffing per line; put the line ends back.
            return [b"".join(line + b"\r\n" for line in pop.retr(number)[1])
                    for number in range(1, count + 1)]

    def filed(self) -> list[Filed]:
        return [(INBOX, raw) for raw in self.messages()]

    def clear(self) -> None:
        with self._session("clearing") as pop:
            count, _ = pop.stat()
            for number in range(1, count + 1):
                pop.dele(number)

    def close(self) -> None:
        """No session outlives a read (see the class docstring)."""

    @contextmanager
    def _session(self, purpose: str) -> Iterator[poplib.POP3]:
        account = self.account
        try:
            pop = (poplib.POP3_SSL(account.host, account.port, timeout=self.timeout, context=account.tls)
                   if account.implicit_tls
                   else poplib.POP3(account.host, account.port, timeout=self.timeout))
            try:
                if account.starttls:
                    pop.stls(account.tls)
                pop.user(account.user)
                pop.pass_(account.password)
                yield pop
                pop.quit()
            finally:
                pop.close()
        except (OSError, poplib.error_proto) as err:
            raise MailboxError(f"{account.url}: {purpose} failed: {err}") from err


class ImapMailbox:
    """IMAP folders: EXAMINE and BODY.PEEK[] to read (no flag changes); \\Deleted + EXPUNGE to clear.

    `filed()` reads every selectable folder LIST shows (RFC 9051 §6.3.9), INBOX first. One
    login serves every read until `close()`: each read lists and opens the folders again, and
    opening a folder shows what it holds now (RFC 9051 §6.3.2), so polling costs no logins.
    """

    def __init__(self, account: Account, timeout: float) -> None:
        self.account = account
        self.timeout = timeout
        self._imap: imaplib.IMAP4 | None = None

    def messages(self) -> list[bytes]:
        return self._in_session("reading", lambda imap: self._fetch_all(imap, INBOX))

    def filed(self) -> list[Filed]:
        return self._in_session("reading", lambda imap: [
            (folder, raw) for folder in self._folders(imap) for raw in self._fetch_all(imap, folder)])

    def clear(self) -> None:
        def clear(imap: imaplib.IMAP4) -> None:
            for folder in self._folders(imap):
                if self._select(imap, folder, readonly=False) > 0:
                    imap.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
                    imap.expunge()
        self._in_session("clearing", clear)

    def close(self) -> None:
        imap, self._imap = self._imap, None
        if imap is not None:
            _log_out(imap)

    def _in_session(self, purpose: str, action: Callable[[imaplib.IMAP4], _T]) -> _T:
        """`action` on the kept session (logged in on first use); a kept session the server
        has ended meanwhile (an idle timeout) is replaced once."""
        kept = self._imap is not None
        try:
            try:
                return action(self._session())
            except (ConnectionError, imaplib.IMAP4.abort):  # not a timeout: that would wait twice
                if not kept:
                    raise
                self.close()
                return action(self._session())
        except (OSError, imaplib.IMAP4.error) as err:
            self.close()
            raise MailboxError(f"{self.account.url}: {purpose} failed: {err}") from err

    def _session(self) -> imaplib.IMAP4:
        if self._imap is None:
            account = self.account
            imap = (imaplib.IMAP4_SSL(account.host, account.port, ssl_context=account.tls,
                                      timeout=self.timeout)
                    if account.implicit_tls
                    else imaplib.IMAP4(account.host, account.port, timeout=self.timeout))
            try:
                if account.starttls:
                    imap.starttls(account.tls)
                imap.login(account.user, account.password)
            except BaseException:
                _log_out(imap)
                raise
            self._imap = imap
        return self._imap

    def _fetch_all(self, imap: imaplib.IMAP4, folder: str) -> list[bytes]:
        if self._select(imap, folder, readonly=True) == 0:
            return []
        status, items = imap.fetch("1:*", "(BODY.PEEK[])")
        if status != "OK":
            raise MailboxError(f"{self.account.url}: FETCH in {folder} answered {status} {items!r}")
        # Literals come as (b'SEQ (BODY[] {SIZE}', raw) pairs among plain closing parts.
        fetched = sorted((int(item[0].split(b" ", 1)[0]), item[1])
                         for item in items if isinstance(item, tuple))
        return [raw for _, raw in fetched]

    def _folders(self, imap: imaplib.IMAP4) -> list[str]:
        """Every selectable folder, INBOX first."""
        status, listed = imap.list()
        if status != "OK":
            raise MailboxError(f"{self.account.url}: LIST answered {status} {listed!r}")
        names = []
        for item in listed:
            # A name sent as a literal arrives as (b'(flags) "/" {5}', b'Hello').
            line, literal = item if isinstance(item, tuple) else (item, None)
            found = _LIST_REPLY.match(line.decode("utf-8", "replace")) if line else None
            if found and "\\noselect" not in found["flags"].lower():
                name = literal.decode("utf-8", "replace") if literal is not None else found["name"]
                names.append(name[1:-1].replace('\\"', '"') if name.startswith('"') else name)
        return sorted(set(names) | {INBOX}, key=lambda n: (n.upper() != INBOX, n))

    def _select(self, imap: imaplib.IMAP4, folder: str, *, readonly: bool) -> int:
        """SELECT (or, read-only, EXAMINE) a folder; the number of messages in it."""
        quoted = '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
        status, data = imap.select(quoted, readonly=readonly)
        if status != "OK":
            raise MailboxError(f"{self.account.url}: cannot open {folder}: {status} {data!r}")
        return int(data[0] or b"0")


def _log_out(imap: imaplib.IMAP4) -> None:
    """LOGOUT, and close the socket even when the server is gone (logout() then leaves it open)."""
    try:
        imap.logout()
    except (OSError, imaplib.IMAP4.error):
        with contextlib.suppress(OSError):
            imap.shutdown()


def open_mailbox(url: str, *, password: str | None = None, timeout: float = 10) -> MailboxReader:
    """A reader for the mailbox at `url` (see the module docstring for the forms)."""
    scheme = urlsplit(url).scheme
    if scheme == "maildir":
        path = urlsplit(url).path
        if not path.startswith("/"):
            raise ValueError(f"expected maildir:/absolute/path, got {url!r}")
        return MaildirMailbox(path)
    if scheme in ("pop3", "pop3s"):
        return Pop3Mailbox(Account.parse(url, password), timeout)
    if scheme in ("imap", "imaps"):
        return ImapMailbox(Account.parse(url, password), timeout)
    raise ValueError(f"not a maildir:, pop3(s):// or imap(s):// URL: {url!r}")
