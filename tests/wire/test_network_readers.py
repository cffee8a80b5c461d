"""POP3 and IMAP readers against a real Dovecot: plain, implicit TLS and STARTTLS."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mailconform.suts.wire import MailboxError, MailboxReader
from mailconform.suts.wire import open_mailbox as open_reader
from tests.wire.dovecot import PASSWORD, Dovecot

# (scheme, URL options): every reader, over every transport security.
TRANSPORTS = [("imap", ""), ("imaps", "insecure"), ("imap", "starttls&insecure"),
              ("pop3", ""), ("pop3s", "insecure"), ("pop3", "starttls&insecure")]
TRANSPORT_IDS = [f"{scheme}{'+starttls' if 'starttls' in options else ''}" for scheme, options in TRANSPORTS]
MESSAGES = [
    b"Received: by mx.isp.test id A; Mon, 2 Jan 2023 10:00:00 +0000\r\n"
    b"Message-ID: <1@upstream.test>\r\nSubject: first\r\n\r\nHello.\r\n",
    b"Message-ID: <2@upstream.test>\r\nSubject: second\r\n\r\n.a line starting with a dot\r\n..two\r\n",
    b"Message-ID: <3@upstream.test>\r\nSubject: third\r\n\r\n8-bit caf\xc3\xa9\r\n",
]
_users = itertools.count(1)
Opener = Callable[..., MailboxReader]


@pytest.fixture
def user() -> str:
    """A fresh mailbox per test, so tests never see each other's mail."""
    return f"user{next(_users)}@isp.test"


@pytest.fixture
def open_mailbox() -> Iterator[Opener]:
    """The readers' open_mailbox(), each reader closed when the test ends (IMAP keeps its login)."""
    readers: list[MailboxReader] = []

    def opened(url: str, **options: Any) -> MailboxReader:
        readers.append(reader := open_reader(url, **options))
        return reader
    yield opened
    for reader in readers:
        reader.close()


@pytest.mark.parametrize(("scheme", "options"), TRANSPORTS, ids=TRANSPORT_IDS)
def test_reads_every_message_oldest_first_as_sent(open_mailbox: Opener, dovecot: Dovecot, user: str,
                                                 scheme: str, options: str) -> None:
    """messages() returns every INBOX message, oldest first, byte for byte (CRLF, dots, 8-bit)."""
    for raw in MESSAGES:
        dovecot.append(user, raw)
    reader = open_mailbox(dovecot.url(scheme, user, options), password=PASSWORD)
    assert reader.messages() == MESSAGES
    assert reader.messages() == MESSAGES  # reading deleted nothing


@pytest.mark.parametrize(("scheme", "options"), TRANSPORTS, ids=TRANSPORT_IDS)
def test_clear_deletes_everything(open_mailbox: Opener, dovecot: Dovecot, user: str, scheme: str,
                                  options: str) -> None:
    """clear() leaves the INBOX empty."""
    for raw in MESSAGES[:2]:
        dovecot.append(user, raw)
    reader = open_mailbox(dovecot.url(scheme, user, options), password=PASSWORD)
    reader.clear()
    assert reader.messages() == []


def test_imap_shows_every_folder_pop3_only_the_inbox(open_mailbox: Opener, dovecot: Dovecot,
                                                     user: str) -> None:
    """filed() reads every IMAP folder (INBOX first) and says which; POP3 sees the INBOX only;
    clear() empties every folder."""
    dovecot.append(user, MESSAGES[0])
    dovecot.append(user, MESSAGES[1], folder="Duplicates")
    dovecot.append(user, MESSAGES[2], folder="Lists and more")
    imap = open_mailbox(dovecot.url("imap", user), password=PASSWORD)
    assert imap.filed() == [("INBOX", MESSAGES[0]), ("Duplicates", MESSAGES[1]),
                            ("Lists and more", MESSAGES[2])]
    assert imap.messages() == [MESSAGES[0]]
    assert open_mailbox(dovecot.url("pop3", user), password=PASSWORD).filed() == [("INBOX", MESSAGES[0])]
    imap.clear()
    assert imap.filed() == []


def test_imap_reader_polls_on_one_login_and_sees_new_mail(open_mailbox: Opener, dovecot: Dovecot,
                                                          user: str) -> None:
    """Reads after the first reuse its IMAP login, yet see every message filed since; close()
    ends the session and the next read logs in again."""
    reader = open_mailbox(dovecot.url("imap", user), password=PASSWORD)
    assert reader.filed() == []
    for count, raw in enumerate(MESSAGES, start=1):
        dovecot.append(user, raw, folder="INBOX" if count < 3 else "Later")
        assert [raw for _, raw in reader.filed()] == MESSAGES[:count]
    assert dovecot.logins(user) == 1 + len(MESSAGES)  # the reader's one, and append()'s
    reader.close()
    assert reader.messages() == MESSAGES[:2]
    assert dovecot.logins(user) == 2 + len(MESSAGES)


def test_imap_session_ended_by_the_server_is_replaced(open_mailbox: Opener, dovecot: Dovecot,
                                                      user: str) -> None:
    """A kept session the server has closed meanwhile costs one new login, not an error."""
    dovecot.append(user, MESSAGES[0])
    reader = open_mailbox(dovecot.url("imap", user), password=PASSWORD)
    assert reader.messages() == MESSAGES[:1]
    dovecot.kick(user)
    assert reader.messages() == MESSAGES[:1]
    assert dovecot.logins(user) == 3


def test_empty_mailbox(open_mailbox: Opener, dovecot: Dovecot, user: str) -> None:
    """A mailbox never delivered to reads as empty over IMAP and POP3."""
    for scheme in ("imap", "pop3"):
        assert open_mailbox(dovecot.url(scheme, user), password=PASSWORD).messages() == []


def test_imap_reading_marks_nothing_seen(open_mailbox: Opener, dovecot: Dovecot, user: str) -> None:
    """The IMAP reader EXAMINEs and PEEKs: no message gains the \\Seen flag."""
    dovecot.append(user, MESSAGES[0])
    open_mailbox(dovecot.url("imap", user), password=PASSWORD).messages()
    assert not any(b"\\Seen" in flags for flags in dovecot.flags(user))


def test_password_may_come_in_the_url(open_mailbox: Opener, dovecot: Dovecot, user: str) -> None:
    """imap://user:password@host works when no password argument is given."""
    dovecot.append(user, MESSAGES[0])
    url = dovecot.url("imap", user).replace("%40isp.test@", f"%40isp.test:{PASSWORD}@")
    assert open_mailbox(url).messages() == MESSAGES[:1]


@pytest.mark.parametrize("scheme", ["imap", "pop3"])
def test_wrong_password_names_the_url_not_the_password(open_mailbox: Opener, dovecot: Dovecot, user: str,
                                                       scheme: str) -> None:
    """A refused login is a MailboxError naming the URL, never the password."""
    url = dovecot.url(scheme, user)
    with pytest.raises(MailboxError) as caught:
        open_mailbox(url, password="not-the-password").messages()
    assert url in str(caught.value) and "not-the-password" not in str(caught.value)


def test_password_in_url_is_not_repeated_in_errors(open_mailbox: Opener, dovecot: Dovecot, user: str) -> None:
    """A password given inside the URL is left out of the error's URL."""
    url = dovecot.url("pop3", user).replace("%40isp.test@", "%40isp.test:hunter2@")
    with pytest.raises(MailboxError) as caught:
        open_mailbox(url).messages()
    assert "hunter2" not in str(caught.value) and dovecot.url("pop3", user) in str(caught.value)


def test_self_signed_certificate_is_refused_unless_insecure(open_mailbox: Opener, dovecot: Dovecot,
                                                            user: str) -> None:
    """Without ?insecure the test server's self-signed certificate fails verification."""
    url = dovecot.url("imaps", user)
    with pytest.raises(MailboxError, match="CERTIFICATE_VERIFY_FAILED") as caught:
        open_mailbox(url, password=PASSWORD).messages()
    assert url in str(caught.value)


@pytest.mark.parametrize("scheme", ["imap", "pop3"])
def test_unreachable_server_names_the_url(open_mailbox: Opener, scheme: str) -> None:
    """Nothing listening is a MailboxError naming the URL."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    url = f"{scheme}://bob%40isp.test@127.0.0.1:{port}"
    with pytest.raises(MailboxError, match=f"^{url}: reading failed"):
        open_mailbox(url, password=PASSWORD, timeout=2).messages()


def test_bad_urls_are_refused_early(open_mailbox: Opener) -> None:
    """Unknown schemes, unknown options and STARTTLS on implicit TLS are errors before any I/O."""
    for url in ("ftp://x@h", "imap://x@h?tls", "imaps://x@h?starttls", "maildir:relative/path", "pop3://h"):
        with pytest.raises(ValueError):
            open_mailbox(url, password=PASSWORD)
