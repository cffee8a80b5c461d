"""The world outside the SUT: one loopback SMTP server for every domain that is not the SUT's.

Lists, remote users, forwarders and the reverse-paths notices go to all live
outside the SUT.  A real server relays mail for them to this sink (its
address is printed at the start of a run, or fixed with the TOML `sink` key),
and the suite reads what arrived there as those mailboxes' contents: relayed
copies and failure notices to remote senders are then observed like local ones.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from urllib.parse import urlsplit

from mailconform.suts.heap import threads_share_one_arena
from mailconform.suts.reference import file_at_remote_hosts
from mailconform.suts.wire import EmbeddedServer, Reply

_LOOPBACK = ("127.0.0.1", "localhost")


class _Held:
    """Every message the sink took, per recipient address; safe across the server's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_address: defaultdict[str, list[bytes]] = defaultdict(list)

    def file(self, mailbox: str, raw: bytes) -> None:
        with self._lock:
            self._by_address[mailbox.lower()].append(raw)

    def held(self, mailbox: str) -> list[bytes]:
        with self._lock:
            return list(self._by_address.get(mailbox.lower(), ()))

    def clear(self, mailbox: str | None = None) -> None:
        with self._lock:
            if mailbox is None:
                self._by_address.clear()
            else:
                self._by_address.pop(mailbox.lower(), None)


class _Handler:
    """Final delivery for every remote host: accept any recipient, file with a Return-Path."""

    def __init__(self, held: _Held) -> None:
        self.held = held

    def rcpt(self, address: str) -> Reply:
        return Reply(250, "2.1.5 ok")

    def deliver(self, mail_from: str, rcpts: list[str], data: bytes) -> list[Reply]:
        file_at_remote_hosts(self.held, mail_from, rcpts, data)
        return [Reply(250, "2.0.0 filed by the mailconform sink") for _ in rcpts]


class SinkMailbox:
    """One remote address at the sink, read like any other mailbox."""

    def __init__(self, held: _Held, address: str) -> None:
        self._held = held
        self.address = address

    def messages(self) -> list[bytes]:
        return self._held.held(self.address)

    def filed(self) -> list[tuple[str, bytes]]:
        return [("INBOX", raw) for raw in self.messages()]

    def clear(self) -> None:
        self._held.clear(self.address)

    def close(self) -> None:
        """Held in this process: there is no session to end."""


class Sink:
    """The suite's SMTP sink on loopback; `url` is where a SUT should relay to."""

    def __init__(self, url: str | None = None) -> None:
        self._held = _Held()
        threads_share_one_arena()  # a long run's freed messages stay reusable (suts/heap.py)
        self._server = EmbeddedServer(_Handler(self._held), hostname="sink.mailconform.test",
                                      port=sink_port(url) if url else 0)
        self._server.start()
        self.url = self._server.url

    def mailbox(self, address: str) -> SinkMailbox:
        return SinkMailbox(self._held, address)

    def clear(self) -> None:
        """Forget everything received (a new example starts)."""
        self._held.clear()

    def close(self) -> None:
        self._server.stop()


def sink_port(url: str) -> int:
    """The port of an smtp://127.0.0.1:PORT sink address; anything else is a ValueError."""
    parts = urlsplit(url)
    if parts.scheme != "smtp" or parts.hostname not in _LOOPBACK or not parts.port or parts.path:
        raise ValueError(f"sink = {url!r}: expected smtp://127.0.0.1:PORT"
                         " (the suite listens on loopback only)")
    return parts.port
