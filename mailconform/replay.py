"""Replay a bug-report bundle against any server and say whether the loss reproduces.

    mailconform replay BUNDLE --inject URL --mailbox TEMPLATE [--submission URL] [--same-ids]
    mailconform replay BUNDLE --sut-config PATH [--same-ids]

Exit status: 0 the failure reproduces, 1 it does not, 2 the replay could not be done.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from mailconform.bundle import FORMAT, sent_bytes, short
from mailconform.specs.explain import explain, scenario_from_json
from mailconform.specs.invariants import BY_ID
from mailconform.specs.model import Plan, Role, plan
from mailconform.specs.naming import Naming
from mailconform.specs.observation import Observation
from mailconform.specs.wording import counted
from mailconform.suts.base import SutError
from mailconform.suts.config import SutConfig, load
from mailconform.suts.network import NetworkSUT
from mailconform.suts.wire import MailboxError, ProtocolError

REPRODUCED, NOT_REPRODUCED, ERROR = 0, 1, 2


class ReplayError(Exception):
    """The bundle cannot be replayed as it is (one line says why)."""


def read_bundle(folder: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((folder / "replay.json").read_text())
    except (OSError, ValueError) as error:
        raise ReplayError(f"{folder} is not a mailconform bundle: {error}") from None
    if data.get("format") != FORMAT:
        raise ReplayError(f"{folder}: bundle format {data.get('format')!r}, this mailconform reads {FORMAT}")
    if data.get("invariant") not in BY_ID:
        raise ReplayError(f"{folder}: unknown invariant {data.get('invariant')!r}")
    return data


def recorded_plan(folder: Path, data: dict[str, Any]) -> Plan:
    """The bundle's plan, checked byte for byte against the messages it recorded."""
    scenario = scenario_from_json(data["scenario"])
    original = plan(scenario, Naming(data["nonce"], data["domain"], data["pool"]), data["roles"],
                    data["expands_aliases"])
    for tx in original.injections:
        try:
            same = sent_bytes(folder, tx) == tx.data
        except OSError as error:
            raise ReplayError(f"{folder}: {error}") from None
        if not same:
            raise ReplayError(f"{folder}: sent/{short(tx.id)}.eml is not what this mailconform version"
                              f" sends for the bundle's story (made by {data.get('mailconform')})")
    return original


def replay(folder: Path, config: SutConfig, same_ids: bool = False,
           say: Callable[[str], None] = print) -> bool:
    """Send the bundle's transactions to the server ``config`` describes; True if the failure
    the bundle records happens again."""
    data = read_bundle(folder)
    original = recorded_plan(folder, data)
    invariant = BY_ID[data["invariant"]]
    sut = NetworkSUT(config)
    nonce = data["nonce"] if same_ids else secrets.token_hex(4)
    again = plan(original.scenario, sut.naming(nonce), data["roles"], data["expands_aliases"])
    if "submission" in again.roles and not config.submission:
        # No submission server given: the author's agent hands its message to the mx instead.
        again = replace(again, injections=tuple(replace(tx, entry="mx") for tx in again.injections))
    say(f"replaying {folder.name} ({invariant.id}, recorded against {data['sut']}) into {config.inject}"
        f" with {'the recorded' if same_ids else 'fresh'} Message-IDs (nonce {nonce})")
    try:
        observation = sut.play(again)
    finally:
        sut.close()
    judged = _owed_from_the_last_hop(again, config)
    violations = invariant.check(judged, observation)
    if violations:
        say(explain(invariant, judged, observation, violations, config.name))
        say(f"REPRODUCED: {config.name} breaks {invariant.id} as the bundle records")
        return True
    say(_summary(judged, observation))
    say(f"NOT REPRODUCED: {config.name} holds {invariant.id} on this story")
    return False


def _owed_from_the_last_hop(again: Plan, config: SutConfig) -> Plan:
    """The replay plays every hop outside the server itself, so a copy is owed once its last
    transaction into the server was accepted; copies relayed elsewhere count only where the
    server's relayed mail can be read (a sink)."""
    expected = tuple(replace(e, requires=e.requires[-1:]) for e in again.expected
                     if config.sink or not e.at_sink)
    return replace(again, expected=expected)


def _summary(judged: Plan, observation: Observation) -> str:
    lines = []
    for mailbox in sorted({e.mailbox for e in judged.expected}):
        paths = [short(str(c.path)) for c in observation.copies_in(mailbox)]
        filed = counted(len(paths), "copy", "copies")
        lines.append(f"  {mailbox}: {filed} filed ({', '.join(paths) or '-'})")
    return "\n".join(lines)


def target(args: argparse.Namespace, data: dict[str, Any]) -> SutConfig:
    if args.sut_config:
        return load(args.sut_config, dict(os.environ))
    if not (args.inject and args.mailbox):
        raise ReplayError("give --inject URL and --mailbox TEMPLATE, or --sut-config PATH")
    roles: frozenset[Role] = frozenset({"mx", "submission"} if args.submission else {"mx"})
    return SutConfig(name=args.inject, inject=args.inject, submission=args.submission, roles=roles,
                     domains=(data["domain"],), mailbox=args.mailbox,
                     expands_aliases=data["expands_aliases"])


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path, help="a bundle folder: DIR/<sut>/<invariant>")
    parser.add_argument("--inject", help="smtp://HOST:PORT or lmtp://HOST:PORT of the server")
    parser.add_argument("--submission", help="its submission server, if the story has one")
    parser.add_argument("--mailbox", help="where to read a mailbox: maildir:/path/{local}/Maildir,"
                                          " imap://{local}@HOST:PORT, pop3://...")
    parser.add_argument("--sut-config", type=Path, help="a --sut-config TOML describing the server")
    parser.add_argument("--same-ids", action="store_true",
                        help="send the recorded Message-IDs and addresses instead of fresh ones")


def run(args: argparse.Namespace) -> int:
    """Replay as the command line asked; the exit status says whether the failure reproduced."""
    try:
        data = read_bundle(args.bundle)
        return REPRODUCED if replay(args.bundle, target(args, data), args.same_ids) else NOT_REPRODUCED
    except (ReplayError, ValueError, OSError, SutError, ProtocolError, MailboxError) as error:
        print(f"mailconform replay: {error}", file=sys.stderr)
        return ERROR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mailconform replay", description=__doc__.splitlines()[0])
    arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
