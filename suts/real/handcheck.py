"""The four-delivery hand check of a running real-system profile.

    suts/real/hand-check PROFILE      (the profile must be started)

One Message-ID, four deliveries to one fresh mailbox, each on its own
connection: (a) the poster's Bcc-to-self copy, (b) the list's copy (envelope
sender l1-bounces@lists.test, List-Id/List-Post/Precedence added), (c) a resent
copy with a Resent-* block, (d) the list's copy again with a Date one hour
later. Every accepted delivery is a separate path owing its own copy (RFC 5321
§4.1.1.4, §6.1); a refusal owes none. Prints each step's replies and the copies
in the mailbox after it, through the suite's own wire layer.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid
from pathlib import Path

from mailconform.suts.config import SutConfig, load
from mailconform.suts.wire import (
    Injector,
    MailboxError,
    ProtocolError,
    TransactionReply,
    open_mailbox,
    wait_quiet,
)

_PROFILES = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Delivery:
    label: str
    mail_from: str
    header: str


def deliveries(mailbox: str, message_id: str, sent: float) -> list[Delivery]:
    """The four deliveries of one post to `mailbox`, its author."""
    date = format_datetime(datetime.fromtimestamp(int(sent), UTC))
    later = format_datetime(datetime.fromtimestamp(int(sent) + 3600, UTC))
    post = (f"From: {mailbox}\r\nTo: l1@lists.test\r\nSubject: hand check\r\n"
            f"Message-ID: {message_id}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n")
    listed = ("List-Id: <l1.lists.test>\r\nList-Post: <mailto:l1@lists.test>\r\n"
              "Precedence: list\r\n")
    resent = (f"Resent-From: carol@remote.example\r\nResent-To: {mailbox}\r\n"
              f"Resent-Date: {date}\r\nResent-Message-ID: {make_msgid(domain='remote.example')}\r\n")
    return [Delivery("a direct", mailbox, f"Date: {date}\r\n{post}"),
            Delivery("b list copy", "l1-bounces@lists.test", f"{listed}Date: {date}\r\n{post}"),
            Delivery("c resent", "carol@remote.example", f"{resent}Date: {date}\r\n{post}"),
            Delivery("d list copy, Date +1 h", "l1-bounces@lists.test", f"{listed}Date: {later}\r\n{post}")]


def replies(reply: TransactionReply, rcpt: str) -> str:
    steps = [("MAIL", reply.mail), ("RCPT", reply.rcpts.get(rcpt)), ("DATA", reply.data.get(rcpt))]
    return " | ".join(f"{name} {r.code} {' '.join(r.text.split())}" for name, r in steps if r)


def provision(config: SutConfig, local: str) -> None:
    if config.provision:
        command = config.provision.format(local=shlex.quote(local), domain=config.domains[0],
                                          address=shlex.quote(f"{local}@{config.domains[0]}"))
        subprocess.run(command, shell=True, check=True, cwd=config.directory, timeout=config.timeouts.reply)


def hand_check(config: SutConfig, out: list[str]) -> tuple[list[int], list[int]]:
    """Run the four deliveries; (copies after each step, copies owed after each step)."""
    local = config.mailboxes[0] if config.mailboxes else f"hc{os.getpid()}x{int(time.time()) % 100000}"
    address = f"{local}@{config.domains[0]}"
    provision(config, local)
    with closing(open_mailbox(config.mailbox_url(address), password=config.password,
                              timeout=config.timeouts.reply)) as reader:
        reader.clear()
        message_id = make_msgid(domain="isp.test")
        out.append(f"{config.name}: four deliveries of {message_id} to {address} via {config.inject},"
                   " each on its own connection")
        copies, owed, accepted = [], [], 0
        for delivery in deliveries(address, message_id, time.time()):
            data = f"{delivery.header}\r\nOne post, four paths.\r\n".encode()
            with Injector(config.inject, sut=config.name, connect_timeout=config.timeouts.connect,
                          reply_timeout=config.timeouts.reply) as injector:
                try:
                    reply = injector.send(delivery.mail_from, [address], data)
                except ProtocolError as error:
                    out.append(f"{delivery.label:24} broke the protocol: {error}")
                    break
            accepted += reply.delivered_to(address)
            quiet = wait_quiet(lambda: len(reader.messages()), settle=max(config.timeouts.settle, 0.5),
                               limit=config.timeouts.quiescence)
            copies.append(quiet.snapshot)
            owed.append(accepted)
            out.append(f"{delivery.label:24} {replies(reply, address)}")
            out.append(f"{'':24} copies {quiet.snapshot} (owed {accepted})")
    out.append(f"copies after a, b, c, d: {','.join(map(str, copies))};"
               f" owed: {','.join(map(str, owed))}")
    return copies, owed


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: suts/real/hand-check PROFILE", file=sys.stderr)
        return 2
    path = _PROFILES / argv[0] / "sut.toml"
    if not path.exists():
        print(f"no profile {argv[0]!r}: {path} does not exist", file=sys.stderr)
        return 2
    out: list[str] = []
    try:
        copies, owed = hand_check(load(path, dict(os.environ)), out)
    except (OSError, subprocess.SubprocessError, ProtocolError, MailboxError, ValueError) as error:
        print("\n".join(out + [f"hand check failed: {error}"]), file=sys.stderr)
        return 1
    print("\n".join(out))
    return 0 if copies == owed else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
