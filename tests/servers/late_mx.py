"""An SMTP store that answers 250 at once and files later: the first message at once, each later
one DELAY seconds after its 250 -- a queue that fell behind after start-up.  It shares no code
with mailconform and loses nothing: every copy arrives, some after the suite's usual wait.

    python late_mx.py PORT MAILDIR_ROOT DOMAIN DELAY
"""

import asyncio
import mailbox
import sys
import threading
from email.utils import formatdate
from pathlib import Path

from aiosmtpd.controller import Controller


class LateStore:
    def __init__(self, root: Path, domain: str, delay: float) -> None:
        self.root, self.domain, self.delay = root, domain, delay
        self.counter = 0
        self.filing = threading.Lock()  # timers fire on their own threads; one Maildir writer at a time

    async def handle_RCPT(self, server, session, envelope, address, options):  # type: ignore[no-untyped-def]
        if not address.lower().endswith("@" + self.domain):
            return "550 5.7.1 not my domain"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 ok"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.counter += 1
        trace = (f"Return-Path: <{envelope.mail_from}>\r\n"
                 f"Received: from {session.host_name} by late.{self.domain} with ESMTP"
                 f" id late{self.counter}; {formatdate()}\r\n").encode()
        raw, locals_ = trace + envelope.original_content, list(dict.fromkeys(
            a.lower().split("@")[0] for a in envelope.rcpt_tos))
        delay = 0.0 if self.counter == 1 else self.delay
        threading.Timer(delay, self.file, (locals_, raw)).start()
        return "250 2.0.0 queued"

    def file(self, locals_: list[str], raw: bytes) -> None:
        with self.filing:
            for local in locals_:
                folder = self.root / local
                folder.mkdir(parents=True, exist_ok=True)
                mailbox.Maildir(folder / "Maildir").add(raw)


def main() -> None:
    port, root, domain, delay = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    controller = Controller(LateStore(root, domain, delay), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
