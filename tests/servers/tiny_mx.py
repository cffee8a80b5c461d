"""A tiny, independent SMTP mail store, run as its own process.

It shares no code with mailconform: aiosmtpd in front, one Maildir per local
part behind, a Received and a Return-Path on every copy.  The suite must judge
it through a `--sut-config` file alone.

    python tiny_mx.py PORT MAILDIR_ROOT DOMAIN [--dedup]

--dedup drops a copy whose Message-ID the mailbox already holds, answering 250
all the same: the bug this suite exists for.
"""

import asyncio
import email
import mailbox
import sys
from email.utils import formatdate
from pathlib import Path

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, root: Path, domain: str, dedup: bool = False) -> None:
        self.root = root
        self.domain = domain
        self.dedup = dedup
        self.counter = 0

    async def handle_RCPT(self, server, session, envelope, address, options):  # type: ignore[no-untyped-def]
        if not address.lower().endswith("@" + self.domain):
            return "550 5.7.1 not my domain"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 ok"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.counter += 1
        message = email.message_from_bytes(envelope.original_content)
        trace = (f"Return-Path: <{envelope.mail_from}>\r\n"
                 f"Received: from {session.host_name} by tiny.{self.domain} with ESMTP"
                 f" id tiny{self.counter}; {formatdate()}\r\n").encode()
        for local in dict.fromkeys(a.lower().split("@")[0] for a in envelope.rcpt_tos):
            folder = self.root / local
            folder.mkdir(parents=True, exist_ok=True)
            store = mailbox.Maildir(folder / "Maildir")
            if self.dedup and any(held["Message-ID"] == message["Message-ID"] for held in store):
                continue
            store.add(trace + envelope.original_content)
        return "250 2.0.0 filed"


def main() -> None:
    port, root, domain = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    controller = Controller(Store(root, domain, "--dedup" in sys.argv[4:]), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
