"""The embedded default SUT: the reference delivery logic served by aiosmtpd on loopback.

It files into real Maildirs, relays its users' mail for remote domains to the
suite's sink (real SMTP, as for any SUT), and can run any named policy, so
the known-bad rules are caught over the wire exactly as in-process.

Its Maildirs live on tmpfs (/dev/shm) when the machine has one, else in the
temp dir.  Between examples each store's directory is renamed aside (one
system call) and deleted by a background thread, so a long run neither piles
up directories nor deletes them on the path that plays the scenarios.
"""

from __future__ import annotations

import itertools
import mailbox as maildir
import os
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from mailconform.specs.model import Plan
from mailconform.suts.config import SutConfig, Timeouts
from mailconform.suts.heap import threads_share_one_arena
from mailconform.suts.network import NetworkSUT
from mailconform.suts.policies import policy as named_policy
from mailconform.suts.reference import ReferenceServer
from mailconform.suts.sink import Sink
from mailconform.suts.wire import EmbeddedServer, Injector, Reply

TMPFS = Path("/dev/shm")


def maildir_root() -> Path:
    """Where embedded Maildirs go: tmpfs when there is one (Maildir writes are several
    times faster there than on a disk), else the temp dir."""
    if TMPFS.is_dir() and os.access(TMPFS, os.W_OK | os.X_OK):
        return TMPFS
    return Path(tempfile.gettempdir())


class MaildirStore:
    """One Maildir per address under a root directory."""

    def __init__(self, root: Path, sweeper: ThreadPoolExecutor) -> None:
        self.root = root
        self.template = f"maildir:{root}/{{address}}/Maildir"
        """Where the suite reads a mailbox, as a --sut-config mailbox template."""
        self._sweeper = sweeper
        self._boxes: dict[str, maildir.Maildir] = {}
        self._emptied = itertools.count(1)

    def file(self, mailbox: str, raw: bytes) -> None:
        address = mailbox.lower()
        box = self._boxes.get(address)
        if box is None:
            (self.root / address).mkdir(parents=True, exist_ok=True)
            box = self._boxes[address] = maildir.Maildir(self.root / address / "Maildir", create=True)
        box.add(raw)

    def empty(self) -> None:
        """Start again with no mailboxes; the old ones are deleted in the background."""
        self._boxes.clear()
        if self.root.exists():
            aside = self.root.with_name(f"{self.root.name}.old{next(self._emptied)}")
            self.root.rename(aside)
            self._sweeper.submit(shutil.rmtree, aside, ignore_errors=True)


class _Mx:
    def __init__(self, server: ReferenceServer) -> None:
        self.server = server

    def rcpt(self, address: str) -> Reply:
        return self.server.rcpt(address)

    def deliver(self, mail_from: str, rcpts: list[str], data: bytes) -> list[Reply]:
        return self.server.deliver(mail_from, rcpts, data)


class _Submission(_Mx):
    def rcpt(self, address: str) -> Reply:
        return Reply(250, "2.1.5 will relay")

    def deliver(self, mail_from: str, rcpts: list[str], data: bytes) -> list[Reply]:
        return self.server.submit(mail_from, rcpts, data)


class EmbeddedSUT(NetworkSUT):
    """`root`: where the Maildirs go (default: a temporary directory, removed by close());
    `port`: the mx server's port, the submission server's is the next one (default: free ports)."""

    def __init__(self, policy_name: str = "reference", protocol: Literal["smtp", "lmtp"] = "smtp",
                 root: Path | None = None, port: int = 0) -> None:
        self._own_root = root is None
        self.root = root or Path(tempfile.mkdtemp(prefix="mailconform-embedded-", dir=maildir_root()))
        """Where its Maildirs live."""
        threads_share_one_arena()  # a long run's freed messages stay reusable (suts/heap.py)
        self._sweeper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mailconform-sweeper")
        sink = Sink()
        self._relay_client = Injector(sink.url, sut="the suite's sink")
        self._relay_lock = threading.Lock()
        self._mx_store = MaildirStore(self.root / "mx", self._sweeper)
        self._nonce = ""
        self._reference = ReferenceServer(named_policy(policy_name), self._mx_store, self._relay)
        self._servers = [EmbeddedServer(_Mx(self._reference), protocol=protocol, port=port)]
        if protocol == "smtp":  # LMTP is for final delivery only (RFC 2033)
            self._servers.append(EmbeddedServer(_Submission(self._reference), port=port and port + 1))
        for server in self._servers:
            server.start()
        kind = "embedded" if protocol == "smtp" else "embedded-lmtp"
        super().__init__(SutConfig(
            name=kind if policy_name == "reference" else f"{kind}:{policy_name}",
            inject=self._servers[0].url,
            submission=self._servers[1].url if protocol == "smtp" else None,
            roles=frozenset({"mx", "submission"}) if protocol == "smtp" else frozenset({"mx"}),
            domains=("isp.test",), mailbox=self._mx_store.template,
            expands_aliases=True, sink=sink.url,
            # It files (and relays) before it answers: nothing to wait for.
            delivery="synchronous", timeouts=Timeouts(connect=5, reply=30, quiescence=5, settle=0)),
            before_play=self._reset, sink=sink)
        self.notes = ()  # everything it uses is its own, and removed as it goes

    def _reset(self, plan: Plan) -> None:
        self._reference.aliases = dict(plan.aliases)
        if plan.naming.nonce != self._nonce:
            # A new example names fresh mailboxes: what the store holds can go, or it piles up.
            # A plan played again (a two-play experiment) finds its mailboxes as it left them.
            self._nonce = plan.naming.nonce
            self._reference.forget()
            self._mx_store.empty()

    def _relay(self, mail_from: str, rcpts: list[str], data: bytes) -> None:
        # Called from the servers' threads; one reused connection, one sender at a time.
        with self._relay_lock:
            reply = self._relay_client.send(mail_from, rcpts, data)
        if not all(reply.delivered_to(r) for r in rcpts):
            raise RuntimeError(f"the sink refused a relayed copy: {reply}")

    def close(self) -> None:
        super().close()
        self._relay_client.close()
        for server in self._servers:
            server.stop()
        self._sweeper.shutdown(wait=True)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)
