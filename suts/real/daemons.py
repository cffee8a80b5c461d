"""The process and socket chores of suts/real/lib.sh that read better in Python.

    python -m mailconform.suts.real.daemons ready TIMEOUT STATE_DIR KIND:WHERE...
    python -m mailconform.suts.real.daemons devlog LOGFILE | devlog-live
    python -m mailconform.suts.real.daemons stop STATE_DIR
    python -m mailconform.suts.real.daemons cyrus-create IMAP_PORT ADMIN_SECRET LOCAL...

A profile's state dir holds `pids` (one "label pid start-time" line per daemon
start recorded), optionally `orphans` (a string found in the command line of
daemons that outlived their killed parent) and `devlog.inode` (the /dev/log
socket this profile created). Standard library only: it runs before anything
else is known to work.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import signal
import socket
import sys
import time
from pathlib import Path

_GREETING = {"smtp": (b"QUIT\r\n", b"220"), "lmtp": (b"QUIT\r\n", b"220"), "unix": (b"QUIT\r\n", b"220"),
             "imap": (b"a LOGOUT\r\n", b"* OK"), "pop3": (b"QUIT\r\n", b"+OK")}


def start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (field 22 of /proc/PID/stat), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(") ")[2].split()[19]


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(") ")[2][0] != "Z"
    except OSError:
        return False


def recorded(state: Path) -> list[tuple[str, int]]:
    """(label, pid) of each recorded daemon that is still the process that was recorded."""
    path = state / "pids"
    entries = []
    for line in path.read_text().splitlines() if path.exists() else []:
        label, pid, started = (line.split() + ["", ""])[:3]
        if pid.isdigit() and started and start_time(int(pid)) == started:
            entries.append((label, int(pid)))
    return entries


def ready(timeout: float, state: Path, targets: list[str]) -> str | None:
    """Wait until every target greets as its protocol should; the reason if one never does."""
    deadline = time.monotonic() + timeout
    daemons = [pid for _, pid in recorded(state)]
    for target in targets:
        kind, _, where = target.partition(":")
        while True:
            dead = [pid for pid in daemons if not alive(pid)]
            if dead:
                return f"daemon pid {dead[0]} died"
            try:
                greeting = _greeting(kind, where)
            except OSError as error:
                if time.monotonic() > deadline:
                    return f"{target}: {error}"
                time.sleep(0.05)
                continue
            if not greeting.startswith(_GREETING[kind][1]):
                return f"{target} answered {greeting!r}"
            break
    return None


def _greeting(kind: str, where: str) -> bytes:
    if kind == "unix":
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(2)
        conn.connect(where)
    else:
        conn = socket.create_connection(("127.0.0.1", int(where)), timeout=2)
    with conn:
        greeting = conn.makefile("rb").readline()
        conn.sendall(_GREETING[kind][0])
    return greeting


def devlog_live() -> bool:
    """Someone listens on /dev/log."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect("/dev/log")
        except OSError:
            return False
    return True


def devlog(logfile: Path) -> None:
    """Be the syslog daemon: append every datagram sent to /dev/log to `logfile`, forever."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind("/dev/log")
    os.chmod("/dev/log", 0o666)
    with logfile.open("ab", buffering=0) as log:
        while True:
            log.write(listener.recv(65536).rstrip(b"\0\n") + b"\n")


def stop(state: Path, grace: float) -> bool:
    """Stop exactly what start recorded (and what it has forked), the /dev/log listener last."""
    entries = recorded(state)
    daemons = [pid for label, pid in entries if label != "devlog"]
    marker = state / "orphans"
    if marker.exists():  # children of a killed master, reparented to init
        daemons += _orphans(marker.read_text().strip())
    ok = _terminate(daemons, [p for d in daemons for p in _descendants(d)], grace)
    ok = _terminate([pid for label, pid in entries if label == "devlog"], [], grace) and ok
    inode = state / "devlog.inode"
    with contextlib.suppress(OSError):  # /dev/log goes only if it is still our socket
        if os.stat("/dev/log").st_ino == int(inode.read_text()):
            os.unlink("/dev/log")
    if ok:
        for name in ("pids", "devlog.inode"):
            (state / name).unlink(missing_ok=True)
    return ok


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rpartition(") ")[2].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    return children


def _descendants(root: int) -> list[int]:
    children, found, queue = _children(), [], [root]
    while queue:
        kids = children.get(queue.pop(), [])
        found += kids
        queue += kids
    return found


def _orphans(marker: str) -> list[int]:
    found = []
    for pid in _children().get(1, []):
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " "):
                found.append(pid)
        except OSError:
            continue
    return found


def _terminate(daemons: list[int], forked: list[int], grace: float) -> bool:
    """SIGTERM the daemons (they stop their own children), wait for all, SIGKILL what lingers."""
    everyone = daemons + forked
    _signal(daemons, signal.SIGTERM)
    if _gone(everyone, grace):
        return True
    print(f"pids {everyone} did not all exit {grace:.0f}s after SIGTERM: SIGKILL", file=sys.stderr)
    _signal(everyone, signal.SIGKILL)
    if _gone(everyone, 5):
        return True
    print(f"pids {[p for p in everyone if alive(p)]} survived SIGKILL", file=sys.stderr)
    return False


def _gone(pids: list[int], limit: float) -> bool:
    deadline = time.monotonic() + limit
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def cyrus_create(port: int, admin_secret: Path, locals_: list[str]) -> str | None:
    """CREATE user.LOCAL for each local part, in one session as the Cyrus admin; the server's first
    refusal, unless the mailbox already exists."""
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        imap.login("cyrus", admin_secret.read_text().strip())
        for local in locals_:
            status, data = imap.create(f"user.{local}")
            text = b" ".join(d for d in data if isinstance(d, bytes))
            if status != "OK" and b"exists" not in text.lower():
                return f"CREATE user.{local}: {status} {text!r}"
    finally:
        imap.logout()
    return None


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "devlog":
        devlog(Path(args[0]))
    if command == "devlog-live":
        return 0 if devlog_live() else 1
    if command == "stop":
        return 0 if stop(Path(args[0]), float(os.environ.get("MAILCONFORM_STOP_GRACE", "10"))) else 1
    if command == "ready":
        problem = ready(float(args[0]), Path(args[1]), args[2:])
    elif command == "cyrus-create":
        problem = cyrus_create(int(args[0]), Path(args[1]), args[2:])
    else:
        problem = f"unknown command {command!r}: ready, devlog, devlog-live, stop or cyrus-create"
    if problem:
        print(problem, file=sys.stderr)
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
