"""A private Dovecot on loopback (IMAP, IMAPS, POP3, POP3S) for the mailbox readers' tests."""

from __future__ import annotations

import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.ports import free_ports

INSTALL_HINT = "Dovecot is not installed: apt-get install -y dovecot-imapd dovecot-pop3d"
PASSWORD = "secret"
MAIL_UID = MAIL_GID = 65534  # nobody/nogroup: Dovecot refuses mail access as root
START_TIMEOUT = 10.0
LISTENERS = ("imap", "imaps", "pop3", "pop3s")

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
# Fail wrong passwords fast: no failure delay, and no growing per-IP penalty
# (anvil's penalty socket is made unusable, the documented way to turn it off).
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u allow_all_users=yes
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
"""


@dataclass(frozen=True)
class Dovecot:
    """A running private Dovecot: its ports, where it keeps mail, how to put mail in."""

    ports: dict[str, int]
    root: Path

    def url(self, scheme: str, user: str, options: str = "") -> str:
        """A reader URL for `user` (percent-encoded) over `scheme`, e.g. options="starttls&insecure"."""
        return f"{scheme}://{user.replace('@', '%40')}@127.0.0.1:{self.ports[scheme]}" + (
            f"?{options}" if options else "")

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Put `raw` into `user`'s folder the way Dovecot stores it (IMAP CREATE if needed, APPEND)."""
        imap = imaplib.IMAP4("127.0.0.1", self.ports["imap"], timeout=5)
        try:
            imap.login(user, PASSWORD)
            if folder != "INBOX":
                imap.create(f'"{folder}"')  # NO when it exists already: fine
            status, detail = imap.append(f'"{folder}"', "", None, raw)
            assert status == "OK", detail
        finally:
            imap.logout()

    def logins(self, user: str) -> int:
        """How many IMAP and POP3 logins `user` has made, from Dovecot's log."""
        log = (self.root / "dovecot.log").read_text(errors="replace")
        return log.count(f"Login: user=<{user}>")

    def kick(self, user: str) -> None:
        """End every session of `user` from the server side, and wait until they are gone."""
        doveadm = ["doveadm", "-c", str(self.root / "dovecot.conf")]
        subprocess.run([*doveadm, "kick", user], check=True, capture_output=True)
        deadline = time.monotonic() + START_TIMEOUT
        while user in subprocess.run([*doveadm, "who", user], capture_output=True, text=True).stdout:
            assert time.monotonic() < deadline, f"{user} still logged in after doveadm kick"
            time.sleep(0.05)

    def flags(self, user: str) -> list[bytes]:
        """The FLAGS of each message in `user`'s INBOX, read without changing them."""
        imap = imaplib.IMAP4("127.0.0.1", self.ports["imap"], timeout=5)
        try:
            imap.login(user, PASSWORD)
            imap.select("INBOX", readonly=True)
            status, items = imap.fetch("1:*", "(FLAGS)")
            assert status == "OK", items
            return [item for item in items if isinstance(item, bytes)]
        finally:
            imap.logout()


def _self_signed_cert(root: Path) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem"), "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def _wait_until_listening(process: subprocess.Popen[bytes], ports: list[int], root: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not all(_listening(port) for port in ports):
        if process.poll() is not None or time.monotonic() > deadline:
            logs = "\n".join(log.read_text(errors="replace")
                             for log in (root / "stderr.log", root / "dovecot.log") if log.exists())
            pytest.fail(f"Dovecot did not start (exit code {process.poll()}):\n{logs}", pytrace=False)
        time.sleep(0.05)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """A Dovecot of our own on free loopback ports, stopped by PID at the end."""
    binary = shutil.which("dovecot", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if binary is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("the Dovecot fixture must run as root (Dovecot then drops to its own users)",
                    pytrace=False)
    # Not pytest's tmp_path: that lives under a root-only directory the mail user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="mailconform-dovecot-"))
    root.chmod(0o755)
    (root / "mail").mkdir()
    os.chown(root / "mail", MAIL_UID, MAIL_GID)
    _self_signed_cert(root)
    ports = dict(zip(LISTENERS, free_ports(len(LISTENERS)), strict=True))
    (root / "dovecot.conf").write_text(
        CONFIG.format(root=root, password=PASSWORD, uid=MAIL_UID, gid=MAIL_GID, **ports))
    with open(root / "stderr.log", "wb") as stderr:
        process = subprocess.Popen([binary, "-F", "-c", str(root / "dovecot.conf")],
                                   stdout=stderr, stderr=stderr)
    try:
        _wait_until_listening(process, list(ports.values()), root)
        yield Dovecot(ports, root)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
