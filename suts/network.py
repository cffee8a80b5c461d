"""Any server reached over SMTP/LMTP on loopback and read back from its mailboxes."""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from mailconform.specs.invariants import owed
from mailconform.specs.model import Plan, Role, plan
from mailconform.specs.naming import Naming
from mailconform.specs.observation import Observation, observe
from mailconform.specs.scenario import Scenario, Submit, World
from mailconform.suts.base import ReplyLog, SutError
from mailconform.suts.config import SutConfig
from mailconform.suts.wire import (
    Injector,
    MailboxReader,
    check_reachable,
    open_mailbox,
    wait_for,
    wait_quiet,
)

_Held = dict[str, tuple[bytes, ...]]


@dataclass(frozen=True)
class _Played:
    """What recheck() needs of the last play: where to read, what was accepted, and when."""

    plan: Plan
    readers: dict[str, MailboxReader]
    log: ReplyLog
    replied: float
    owed_copies: int


_BRIEF = 0.05
"""Seconds of stillness that suffice once every owed copy has arrived."""


class NetworkSUT:
    def __init__(self, config: SutConfig, before_play: Callable[[Plan], None] | None = None) -> None:
        self.config = config
        self.name = config.name
        self.transport = config.transport
        self.roles: frozenset[Role] = config.roles
        self.expands_aliases = config.expands_aliases
        self._before_play = before_play
        self._injectors: dict[str, Injector] = {}
        self._provisioned: set[str] = set()
        self._last: _Played | None = None

    def naming(self, nonce: str) -> Naming:
        pool = {f"u{n}": local for n, local in enumerate(self.config.mailboxes, start=1)}
        return Naming(nonce, self.config.domains[0], pool)

    def preflight(self) -> None:
        """Stop with one clear message unless the SUT takes and files one plain message."""
        timeouts = self.config.timeouts
        for url in filter(None, (self.config.inject, self.config.submission)):
            check_reachable(url, sut=self.name, timeout=timeouts.connect)
        scenario = Scenario(World(("u1",), ("r1",)), (Submit("m1", "r1", ("u1",)),))
        the_plan = plan(scenario, self.naming("preflight"), ("mx",), self.expands_aliases)
        observation = self.play(the_plan)
        (tx,) = the_plan.injections
        if not observation.accepted.get(tx.id):
            raise SutError(self.name, "preflight", f"refused a plain message to {tx.rcpts[0]}",
                           observation.replies.get(tx.id, {}).get(tx.rcpts[0]))
        if not observation.copies:
            raise SutError(self.name, "preflight",
                           f"accepted a plain message to {tx.rcpts[0]} but it did not appear at"
                           f" {self.config.mailbox_url(tx.rcpts[0])} within {timeouts.quiescence:g} s")

    def play(self, plan: Plan) -> Observation:
        if self._before_play:
            self._before_play(plan)
        readers = self._readers(plan)
        log = ReplyLog()
        for tx in plan.injections:
            url = self.config.submission if tx.entry == "submission" else self.config.inject
            assert url, "the model only plans submissions for SUTs with that role"
            log.record(tx.id, self._injector(url).send(tx.mail_from, tx.rcpts, tx.data))
        replied = time.monotonic()
        owed_copies = len(owed(plan, Observation((), accepted=log.accepted)))
        self._last = _Played(plan, readers, log, replied, owed_copies)
        quiet = self._wait_quiet(readers, owed_copies)
        return self._observe(self._last, quiet)

    def recheck(self, plan: Plan) -> Observation:
        last = self._last
        if last is None or last.plan is not plan:
            raise ValueError("recheck() reads back the last play(); this plan was not the last one played")
        deadline = last.replied + self.config.timeouts.quiescence

        def snapshot() -> _Held:
            return {mailbox: tuple(reader.messages()) for mailbox, reader in last.readers.items()}
        wait_for(lambda: sum(map(len, snapshot().values())) >= last.owed_copies,
                 limit=max(0.0, deadline - time.monotonic()))
        return self._observe(last, snapshot())

    def _observe(self, played: _Played, held: _Held) -> Observation:
        observation = observe({mailbox: list(messages) for mailbox, messages in held.items()},
                              played.plan.naming.transaction_id_pattern, played.log.accepted,
                              played.log.said)
        return replace(observation, waited=time.monotonic() - played.replied,
                       transcripts=played.log.transcripts)

    def _wait_quiet(self, readers: dict[str, MailboxReader], owed_copies: int) -> _Held:
        """Read until the mailboxes hold still: briefly once every owed copy is there,
        for the configured settle time while copies are still missing."""
        timeouts = self.config.timeouts

        def snapshot() -> _Held:
            return {mailbox: tuple(reader.messages()) for mailbox, reader in readers.items()}
        quiet = wait_quiet(snapshot, settle=min(timeouts.settle, _BRIEF), limit=timeouts.quiescence)
        if sum(map(len, quiet.snapshot.values())) < owed_copies and timeouts.settle > _BRIEF:
            quiet = wait_quiet(snapshot, settle=timeouts.settle, limit=timeouts.quiescence)
        if not quiet.settled:
            raise SutError(self.name, "reading the mailboxes",
                           f"mailboxes still changing after {timeouts.quiescence:g} s")
        return quiet.snapshot

    def hang_up(self) -> None:
        """Close every connection; the next transaction opens a new one."""
        for injector in self._injectors.values():
            injector.close()
        self._injectors.clear()

    def close(self) -> None:
        self.hang_up()

    def _injector(self, url: str) -> Injector:
        if url not in self._injectors:
            timeouts = self.config.timeouts
            self._injectors[url] = Injector(url, sut=self.name, connect_timeout=timeouts.connect,
                                            reply_timeout=timeouts.reply)
        return self._injectors[url]

    def _readers(self, plan: Plan) -> dict[str, MailboxReader]:
        """Open (and provision, or empty) every mailbox the plan can reach."""
        timeout = self.config.timeouts.reply
        readers = {}
        for address in plan.mailboxes:
            self._provision(address)
            readers[address] = open_mailbox(self.config.mailbox_url(address),
                                            password=self.config.password, timeout=timeout)
            if self.config.mailboxes:
                readers[address].clear()  # a fixed pool carries the last example's mail
        sink = self.config.sink
        if sink:  # relayed copies, and notices to remote reverse-paths
            remote = {e.mailbox for e in plan.expected if e.at_sink}
            remote |= {e.return_path for e in plan.expected} - set(readers)
            readers.update({address: open_mailbox(sink.format(address=address)) for address in remote})
        return readers

    def _provision(self, address: str) -> None:
        template = self.config.provision
        if not template or self.config.mailboxes or address in self._provisioned:
            return
        local, _, domain = address.partition("@")
        command = template.format(local=shlex.quote(local), domain=shlex.quote(domain),
                                  address=shlex.quote(address))
        done = subprocess.run(command, shell=True, capture_output=True, text=True,
                              timeout=self.config.timeouts.reply)
        if done.returncode:
            raise SutError(self.name, f"provisioning {address}",
                           f"`{command}` exited {done.returncode}",
                           (done.stderr.strip() or done.stdout.strip())[-200:] or None)
        self._provisioned.add(address)

