"""Run a built-in SUT as a standalone loopback server until interrupted.

    mailconform serve embedded-lmtp:dedup-message-id [--port N] [--root DIR]

It prints a `--sut-config` description of itself (inject URL, mailbox
template), so a user can replay a bundle against it, poke it with swaks, or
point another tool at it.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from mailconform.suts.embedded import EmbeddedSUT
from mailconform.suts.policies import policy

SERVABLE = ("embedded", "embedded-lmtp")


def start(name: str, port: int = 0, root: Path | None = None) -> EmbeddedSUT:
    """The built-in SUT called ``name`` (embedded[:<policy>], embedded-lmtp[:<policy>]), listening."""
    kind, _, policy_name = name.partition(":")
    if kind not in SERVABLE:
        raise ValueError(f"cannot serve {name!r}: use embedded[:<policy>] or embedded-lmtp[:<policy>]")
    policy(policy_name or "reference")  # an unknown policy fails here, naming the known ones
    if root is not None:
        root = root.resolve()
        root.mkdir(parents=True, exist_ok=True)
    return EmbeddedSUT(policy_name or "reference", "smtp" if kind == "embedded" else "lmtp",
                       root=root, port=port)


def description(sut: EmbeddedSUT) -> str:
    """The running server as a --sut-config TOML file."""
    config = sut.config
    lines = [f'name = "{config.name}"', f'inject = "{config.inject}"']
    if config.submission:
        lines += [f'submission = "{config.submission}"', 'roles = ["mx", "submission"]']
    lines += ['domains = ["isp.test"]', f'mailbox = "{config.mailbox}"', "expands_aliases = true"]
    return "\n".join(lines)


def serve(name: str, port: int = 0, root: Path | None = None,
          say: Callable[[str], None] = print) -> None:
    """Serve ``name`` until SIGINT or SIGTERM."""
    sut = start(name, port, root)
    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        stop.set()
    previous = {s: signal.signal(s, stopping) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        say(f"# mailconform serve: {sut.name} on 127.0.0.1 until interrupted (Ctrl-C);"
            " this is its --sut-config:")
        say(description(sut))
        while not stop.wait(0.5):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sut.close()
        say(f"# mailconform serve: {sut.name} stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mailconform serve", description=__doc__.splitlines()[0])
    parser.add_argument("name", help="embedded[:<policy>] or embedded-lmtp[:<policy>]")
    parser.add_argument("--port", type=int, default=0, help="the mx port (submission: the next one)")
    parser.add_argument("--root", type=Path, help="keep the Maildirs here (default: a temporary directory)")
    args = parser.parse_args(argv)
    try:
        serve(args.name, args.port, args.root, say=lambda line: print(line, flush=True))
    except (ValueError, RuntimeError) as error:
        parser.exit(2, f"mailconform serve: {error}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
