"""The embedded default SUT: the reference delivery logic served by aiosmtpd on loopback.

It files into real Maildirs, relays its users' mail for remote domains to the
suite's sink (real SMTP, as for any SUT), and can run any named policy, so
the known-bad rules are caught over the wire exactly as in-process.
"""

from __future__ import annotations

import mailbox as maildir
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from mailconform.specs.model import Plan
from mailconform.suts.config import SutConfig, Timeouts
from mailconform.suts.network import NetworkSUT
from mailconform.suts.policies import policy as named_policy
from mailconform.suts.reference import ReferenceServer
from mailconform.suts.sink import Sink
from mailconform.suts.wire import EmbeddedServer, Injector, Reply, open_mailbox


class MaildirStore:
    """One Maildir per address under a root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.template = f"maildir:{root}/{{address}}/Maildir"
        """Where the suite reads a mailbox, as a --sut-config mailbox template."""

    def file(self, mailbox: str, raw: bytes) -> None:
        path = self.root / mailbox.lower()
        path.mkdir(parents=True, exist_ok=True)
        maildir.Maildir(path / "Maildir", create=True).add(raw)

    def held(self, mailbox: str) -> list[bytes]:
        return open_mailbox(self.template.format(address=mailbox.lower())).messages()

    def remove(self, mailboxes: Sequence[str]) -> None:
        for mailbox in mailboxes:
            shutil.rmtree(self.root / mailbox.lower(), ignore_errors=True)


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
    def __init__(self, policy_name: str = "reference", protocol: Literal["smtp", "lmtp"] = "smtp") -> None:
        self._root = Path(tempfile.mkdtemp(prefix="mailconform-embedded-"))
        sink = Sink()
        self._relay_client = Injector(sink.url, sut="the suite's sink")
        self._relay_lock = threading.Lock()
        self._mx_store = MaildirStore(self._root / "mx")
        self._reference = ReferenceServer(named_policy(policy_name), self._mx_store, self._relay)
        self._servers = [EmbeddedServer(_Mx(self._reference), protocol=protocol)]
        if protocol == "smtp":  # LMTP is for final delivery only (RFC 2033)
            self._servers.append(EmbeddedServer(_Submission(self._reference)))
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
            before_play=self._reset, sink=sink, remove_mailboxes=self._mx_store.remove)
        self.notes = ()  # everything it uses is its own

    def _reset(self, plan: Plan) -> None:
        self._reference.aliases = dict(plan.aliases)

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
        shutil.rmtree(self._root, ignore_errors=True)
