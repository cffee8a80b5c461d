"""A small, independent mail store with the behaviours real servers have, run as its own process.

It shares no code with mailconform: aiosmtpd in front, one Maildir per local part
behind, a Received and a Return-Path on every copy.  With no flags it files each
message before it answers 250, as a small store does.  Flags switch on one
behaviour each, so the self-tests can show the suite judges each one right
through a `--sut-config` file:

    python store.py --port P --root DIR [--domain isp.test]
        [--queue MIN MAX]          file each message MIN..MAX s after the 250, in arrival order
                                   (MIN = MAX: a queue running a fixed time behind)
        [--greylist]               451 the first RCPT for each mailbox, accept it when tried again
        [--duplicates-folder]      file a copy whose Message-ID the mailbox holds into .Duplicates
        [--dedup]                  (broken) drop a copy whose Message-ID the mailbox holds, after 250
        [--quota N --relay URL]    over N messages: an RFC 3464 notice to the reverse-path
        [--drop-over-quota N]      (broken) over N messages: drop the copy after 250
        [--submission P --user U --password W --relay URL]
                                   a submission port requiring AUTH: strips Bcc, files local
                                   recipients, relays the rest to URL
        [--tls CERT KEY]           the submission port requires STARTTLS before AUTH
        [--leak-bcc]               (broken) the submission port keeps the Bcc field
        [--die-after N]            exit abruptly after N transactions (a crash mid-run)
        [--late-duplicates S]      file a copy whose Message-ID the mailbox holds S s late, out of order
        [--queue-file PATH]        keep the number of messages still queued in PATH (for `idle`)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import mailbox
import os
import queue
import random
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.root = Path(options.root)
        self.domain = options.domain
        self.ids = itertools.count(1)
        self.transactions = itertools.count(1)
        self.greylisted: set[str] = set()
        self.pending = 0
        self.lock = threading.RLock()
        self.jobs: queue.Queue[tuple[float, Callable[[], None]]] = queue.Queue()
        self.sees_duplicates = bool(options.dedup or options.duplicates_folder or options.late_duplicates)
        """Only then is each mailbox read at every filing (a plain store files in constant time)."""
        threading.Thread(target=self._run_queue, daemon=True).start()

    def local(self, address: str) -> bool:
        return address.lower().endswith("@" + self.domain)

    # ---- what the server answers ------------------------------------------
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        if not self.local(address):
            return "550 5.7.1 relaying denied"
        if self.options.greylist and address.lower() not in self.greylisted:
            self.greylisted.add(address.lower())
            return "451 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self._count_transaction()
        data = self._stamp(envelope.original_content)
        self._later(lambda: self.deliver(envelope.mail_from, envelope.rcpt_tos, data))
        return "250 2.0.0 queued" if self.options.queue else "250 2.0.0 filed"

    def _count_transaction(self) -> None:
        if self.options.die_after and next(self.transactions) > self.options.die_after:
            os._exit(3)  # a crash: no reply, no clean shutdown

    def _stamp(self, data: bytes) -> bytes:
        return (f"Received: from upstream by store.{self.domain} with ESMTP id store{next(self.ids)};"
                f" {formatdate()}\r\n").encode() + data

    def _later(self, job: Callable[[], None]) -> None:
        if self.options.queue:
            low, high = self.options.queue
            self._queued(+1)
            self.jobs.put((time.monotonic() + random.uniform(low, high), job))
        else:
            job()

    def _run_queue(self) -> None:
        """One queue runner: messages leave in arrival order, each no sooner than its due time."""
        while True:
            due, job = self.jobs.get()
            time.sleep(max(0.0, due - time.monotonic()))
            job()
            self._queued(-1)

    def _queued(self, change: int) -> None:
        with self.lock:
            self.pending += change
            if self.options.queue_file:
                Path(self.options.queue_file).write_text(str(self.pending))

    # ---- final delivery ---------------------------------------------------
    def deliver(self, mail_from: str, rcpts: list[str], data: bytes) -> None:
        message_id = None
        if self.sees_duplicates:
            message_id = message_from_bytes(data, policy=policy.SMTP)["Message-ID"]
        for local in dict.fromkeys(a.lower().split("@")[0] for a in rcpts if self.local(a)):
            self.file(local, mail_from, message_id, data)

    def file(self, local: str, mail_from: str, message_id: str | None, data: bytes) -> None:
        (self.root / local).mkdir(parents=True, exist_ok=True)
        inbox = mailbox.Maildir(self.root / local / "Maildir")
        with self.lock:
            duplicate = False
            if self.sees_duplicates:
                folders = [inbox] + [inbox.get_folder(name) for name in inbox.list_folders()]
                duplicate = message_id in [m["Message-ID"] for folder in folders for m in folder]
            if duplicate and self.options.dedup:
                return
            limit = self.options.quota or self.options.drop_over_quota
            if limit and len(inbox) >= limit:
                if self.options.quota:
                    self.notify(mail_from, f"{local}@{self.domain}", data)
                return
            target = inbox.add_folder("Duplicates") if duplicate and self.options.duplicates_folder else inbox
            copy = f"Return-Path: <{mail_from if mail_from != '<>' else ''}>\r\n".encode() + data
            if duplicate and self.options.late_duplicates:
                threading.Timer(self.options.late_duplicates, target.add, (copy,)).start()
            else:
                target.add(copy)

    def notify(self, reverse_path: str, rcpt: str, data: bytes) -> None:
        """An RFC 3464 failure notice from the null reverse-path (never for a notice)."""
        if reverse_path in ("", "<>"):
            return
        report = MIMEMultipart("report", report_type="delivery-status")
        report["From"] = f"MAILER-DAEMON@store.{self.domain}"
        report["To"] = reverse_path
        report["Subject"] = "Undelivered mail: mailbox full"
        report["Date"] = formatdate()
        report["Message-ID"] = make_msgid(domain=f"store.{self.domain}")
        report.attach(MIMEText(f"{rcpt} is over quota.\n"))
        per_message, per_recipient, status = Message(), Message(), Message()
        per_message["Reporting-MTA"] = f"dns; store.{self.domain}"
        per_recipient["Final-Recipient"] = f"rfc822; {rcpt}"
        per_recipient["Action"] = "failed"
        per_recipient["Status"] = "5.2.2"
        status.set_type("message/delivery-status")
        status.set_payload([per_message, per_recipient])
        report.attach(status)
        headers = data.split(b"\r\n\r\n", 1)[0]
        report.attach(MIMEText(headers.decode("ascii", "replace") + "\n", "rfc822-headers"))
        notice = report.as_bytes(policy=policy.SMTP)
        if self.local(reverse_path):
            folder = self.root / reverse_path.lower().split("@")[0]
            folder.mkdir(parents=True, exist_ok=True)
            inbox = mailbox.Maildir(folder / "Maildir")
            inbox.add(b"Return-Path: <>\r\n" + notice)
        else:
            self.relay("", [reverse_path], notice)

    def relay(self, mail_from: str, rcpts: list[str], data: bytes) -> None:
        host, port = self.options.relay.removeprefix("smtp://").split(":")
        with smtplib.SMTP(host, int(port), local_hostname=f"store.{self.domain}") as smtp:
            smtp.sendmail(mail_from, rcpts, data)


class Submission:
    """The users' submission port: AUTH required (RFC 6409 §4.3), Bcc stripped, the rest relayed."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        store = self.store
        store._count_transaction()
        message = message_from_bytes(envelope.original_content, policy=policy.SMTP)
        assert isinstance(message, EmailMessage)
        if not store.options.leak_bcc:
            del message["Bcc"]
        data = store._stamp(message.as_bytes())
        local = [r for r in envelope.rcpt_tos if store.local(r)]
        remote = [r for r in envelope.rcpt_tos if not store.local(r)]

        def send() -> None:
            store.deliver(envelope.mail_from, local, data)
            if remote:
                store.relay(envelope.mail_from, remote, data)
        store._later(send)
        return "250 2.0.0 queued"


def authenticator(user: str, password: str) -> Callable[..., AuthResult]:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (
            user, password)
        return AuthResult(success=ok, handled=False)
    return check


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--domain", default="isp.test")
    parser.add_argument("--queue", type=float, nargs=2, metavar=("MIN", "MAX"))
    parser.add_argument("--greylist", action="store_true")
    parser.add_argument("--duplicates-folder", action="store_true")
    parser.add_argument("--dedup", action="store_true")
    parser.add_argument("--quota", type=int)
    parser.add_argument("--drop-over-quota", type=int)
    parser.add_argument("--relay")
    parser.add_argument("--submission", type=int)
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--leak-bcc", action="store_true")
    parser.add_argument("--die-after", type=int)
    parser.add_argument("--late-duplicates", type=float)
    parser.add_argument("--queue-file")
    options = parser.parse_args()
    store = Store(options)
    controllers = [Controller(store, hostname="127.0.0.1", port=options.port)]
    if options.submission:
        tls: dict[str, Any] = {}
        if options.tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*options.tls)
            tls = {"tls_context": context, "require_starttls": True}
        controllers.append(Controller(
            Submission(store), hostname="127.0.0.1", port=options.submission, auth_required=True,
            auth_require_tls=bool(options.tls), authenticator=authenticator(options.user, options.password),
            **tls))
    for controller in controllers:
        controller.start()
    print("ready", flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        for controller in controllers:
            controller.stop()


if __name__ == "__main__":
    main()
