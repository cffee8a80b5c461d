"""Any server reached over SMTP/LMTP on loopback and read back from its mailboxes.

Knowing when delivery is complete.  A queueing MTA answers 250 once the
message is safe in its queue and files it later, so a copy missing right after
the last reply is not yet a lost one.  After the scenario the suite sends one
*barrier* message per entry it used, through that same entry, to every mailbox
the scenario can reach, and waits until each accepted barrier has been filed.
What a queueing MTA guarantees, and what it does not: its queue manager takes
messages from the incoming queue in arrival order (Postfix's qmgr, Exim's
queue runner, OpenSMTPD's scheduler all do), so when a barrier accepted after
the scenario's messages is in the mailbox, every earlier copy has had its
delivery attempt started before it; delivery agents run in parallel, though,
and a copy the store deferred waits for the retry queue.  So a barrier is
strong evidence, not proof: when owed copies are still missing after it, the
suite waits until the mailboxes hold still for `settle` seconds (notices come
then), and `recheck()` re-reads after the full `quiescence` bound before any
loss is reported, so a late copy is reported as late, never as lost.  The
common path -- every owed copy there when the barriers are -- pays no settle
time.  Exactness is available with an `idle` command (the queue is empty), and
`delivery = "synchronous"` skips barriers for stores that file before they
answer.  Barrier copies carry a unique Message-ID each (a deduplicating store
must not drop them) and are removed from the observation: they are the
suite's, not the scenario's.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from email.utils import format_datetime, localtime

from mailconform.specs.invariants import owed
from mailconform.specs.model import Entry, Plan, Role, plan
from mailconform.specs.naming import FORWARD_HOST, ID_DOMAIN, LIST_HOST, REMOTE_DOMAIN, Naming
from mailconform.specs.observation import Observation, observe
from mailconform.specs.scenario import Scenario, Submit, World
from mailconform.suts.base import ReplyLog, SutError
from mailconform.suts.config import SutConfig, shell_commands
from mailconform.suts.sink import Sink
from mailconform.suts.wire import (
    Filed,
    Injector,
    MailboxError,
    MailboxReader,
    ProtocolError,
    check_reachable,
    open_mailbox,
    wait_for,
    wait_quiet,
)

BARRIER_FIELD = b"X-Mailconform-Barrier"
_BARRIER_SENDER = f"mailconform-barrier@{REMOTE_DOMAIN}"
_Held = dict[str, tuple[Filed, ...]]


@dataclass(frozen=True)
class _Played:
    """What recheck() needs of the last play: where to read, what was accepted, and when."""

    plan: Plan
    readers: dict[str, MailboxReader]
    log: ReplyLog
    replied: float
    owed_copies: int


class NetworkSUT:
    def __init__(self, config: SutConfig, before_play: Callable[[Plan], None] | None = None,
                 sink: Sink | None = None,
                 remove_mailboxes: Callable[[Sequence[str]], None] | None = None) -> None:
        self.config = config
        self.name = config.name
        self.transport = config.transport
        self.roles: frozenset[Role] = config.roles
        self.expands_aliases = config.expands_aliases
        self._before_play = before_play
        self._injectors: dict[str, Injector] = {}
        self._provisioned: set[str] = set()
        self._last: _Played | None = None
        self._created: Sequence[str] = ()
        self._remove_mailboxes = remove_mailboxes or (self._run_cleanup if config.cleanup else None)
        try:
            self.sink = sink or Sink(config.sink)
        except RuntimeError as error:
            raise SutError(self.name, "starting the suite's sink", str(error)) from error
        self.notes: tuple[str, ...] = (
            f"the suite's sink for {LIST_HOST}, {REMOTE_DOMAIN} and {FORWARD_HOST} (lists, remote"
            f" users, forwarders, notices) listens at {self.sink.url}",
            f"mailboxes: {self._removal()}")
        """What the user should know before the run: where to relay, what is left behind."""

    def naming(self, nonce: str) -> Naming:
        pool = {f"u{n}": local for n, local in enumerate(self.config.mailboxes, start=1)}
        return Naming(nonce, self.config.domains[0], pool)

    def preflight(self) -> None:
        """Stop with one clear message unless the SUT takes and files one plain message."""
        timeouts = self.config.timeouts
        for url in filter(None, (self.config.inject, self.config.submission)):
            try:
                check_reachable(url, sut=self.name, timeout=timeouts.connect)
            except ProtocolError as error:
                raise SutError(self.name, "connect", error.detail) from error
        scenario = Scenario(World(("u1",), ("r1",)), (Submit("m1", "r1", ("u1",)),))
        the_plan = plan(scenario, self.naming("preflight"), ("mx",), self.expands_aliases)
        observation = self.play(the_plan)
        (tx,) = the_plan.injections
        if not observation.accepted.get(tx.id):
            raise SutError(self.name, "preflight", f"refused a plain message to {tx.rcpts[0]}",
                           observation.replies.get(tx.id, {}).get(tx.rcpts[0], "no reply"))
        if not observation.copies:
            observation = self.recheck(the_plan)
        if not observation.copies:
            raise SutError(self.name, "preflight",
                           f"accepted a plain message to {tx.rcpts[0]} but it did not appear at"
                           f" {self.config.mailbox_url(tx.rcpts[0])} within {timeouts.quiescence:g} s")

    def play(self, plan: Plan) -> Observation:
        with self._driving("setting up the example"):
            self._clean_up()
            if self._before_play:
                self._before_play(plan)
            self.sink.clear()
            readers = self._readers(plan)
        self._created = () if self.config.mailboxes else plan.mailboxes
        log = ReplyLog()
        for tx in plan.injections:
            with self._driving(f"transaction {tx.id} ({tx.hop})", tx.entry):
                log.record(tx.id, self._injector(tx.entry).send(tx.mail_from, tx.rcpts, tx.data))
        with self._driving("sending the barrier messages"):
            barriers = self._send_barriers(plan) if self._uses_barriers else {}
        replied = time.monotonic()
        owed_copies = len(owed(plan, Observation((), accepted=log.accepted)))
        self._last = played = _Played(plan, readers, log, replied, owed_copies)
        with self._driving("reading the mailboxes"):
            return self._observe(played, self._await_delivery(played, barriers))

    def recheck(self, plan: Plan) -> Observation:
        last = self._last
        if last is None or last.plan is not plan:
            raise ValueError("recheck() reads back the last play(); this plan was not the last one played")
        deadline = last.replied + self.config.timeouts.quiescence
        held: _Held = {}

        def all_there() -> bool:
            nonlocal held
            held = self._snapshot(last.readers)
            return _count(held) >= last.owed_copies
        with self._driving("re-reading the mailboxes"):
            wait_for(all_there, limit=max(0.0, deadline - time.monotonic()), poll=0.1)
        return self._observe(last, held)

    def hang_up(self) -> None:
        """Close every connection; the next transaction opens a new one."""
        for injector in self._injectors.values():
            injector.close()
        self._injectors.clear()

    def close(self) -> None:
        try:
            self._clean_up()
        finally:
            self.hang_up()
            self.sink.close()

    @property
    def _uses_barriers(self) -> bool:
        return self.config.delivery == "queued" and not self.config.idle

    def _await_delivery(self, played: _Played, barriers: dict[str, bytes]) -> _Held:
        """The mailboxes once delivery is complete (see the module docstring)."""
        timeouts = self.config.timeouts
        deadline = played.replied + timeouts.quiescence
        if self.config.idle and not wait_for(self._idle, limit=timeouts.quiescence, poll=0.05):
            raise SutError(self.name, "waiting for delivery",
                           f"`{self.config.idle}` did not exit 0 within {timeouts.quiescence:g} s")
        held: _Held = {}
        if barriers:  # its first poll is the first read
            counted, changed = -1, time.monotonic()

            def done() -> bool:
                nonlocal held, counted, changed
                held = self._snapshot(played.readers, keep_barriers=True)
                if all(any(token in raw for _, raw in held[mailbox]) for mailbox, token in barriers.items()):
                    return True
                # A barrier accepted but never filed (a filter dropped it) must not cost the whole
                # bound: every owed copy there and nothing new for `settle` s is as good.
                count = _count(_without_barriers(held))
                if count != counted:
                    counted, changed = count, time.monotonic()
                return count >= played.owed_copies and time.monotonic() - changed >= timeouts.settle
            wait_for(done, limit=timeouts.quiescence)
        else:
            held = self._snapshot(played.readers, keep_barriers=True)
        held = _without_barriers(held)
        # A plan that sent nothing (the SUT lacks the entry its story needs) has nothing to wait for.
        if _count(held) >= played.owed_copies and (barriers or self.config.idle or not played.plan.injections
                                                   or self.config.delivery == "synchronous"):
            return held
        # Copies are missing, or nothing says delivery is done: wait until the mailboxes hold still.
        quiet = wait_quiet(lambda: self._snapshot(played.readers), settle=timeouts.settle,
                           limit=max(timeouts.settle, deadline - time.monotonic()))
        if not quiet.settled:
            raise SutError(self.name, "reading the mailboxes",
                           f"mailboxes still changing after {timeouts.quiescence:g} s")
        return quiet.snapshot

    def _send_barriers(self, plan: Plan) -> dict[str, bytes]:
        """One barrier per entry the plan used, to every mailbox it reaches; mailbox -> the token
        that marks each accepted barrier there."""
        relayed = tuple(dict.fromkeys(e.mailbox for e in plan.expected if e.at_sink))
        expected: dict[str, list[bytes]] = {}
        for entry in dict.fromkeys(tx.entry for tx in plan.injections):
            rcpts = plan.mailboxes + (relayed if entry == "submission" else ())
            token = f"{plan.naming.nonce}.{entry}"
            reply = self._injector(entry).send(_BARRIER_SENDER, rcpts, _barrier(token))
            for rcpt in rcpts:
                if reply.delivered_to(rcpt):
                    expected.setdefault(rcpt, []).append(token.encode())
        # Waiting for the last barrier of each mailbox is waiting for all of them.
        return {mailbox: tokens[-1] for mailbox, tokens in expected.items()}

    def _observe(self, played: _Played, held: _Held) -> Observation:
        observation = observe({m: [raw for _, raw in filed] for m, filed in held.items()},
                              played.plan.naming.transaction_id_in, played.log.accepted,
                              played.log.said,
                              folders={m: [folder for folder, _ in filed] for m, filed in held.items()})
        return replace(observation, waited=time.monotonic() - played.replied,
                       transcripts=played.log.transcripts)

    def _snapshot(self, readers: dict[str, MailboxReader], *, keep_barriers: bool = False) -> _Held:
        held = {mailbox: tuple(reader.filed()) for mailbox, reader in readers.items()}
        return held if keep_barriers else _without_barriers(held)

    def _injector(self, entry: Entry) -> Injector:
        url = self.config.submission if entry == "submission" else self.config.inject
        assert url, "the model only plans submissions for SUTs with that role"
        if url not in self._injectors:
            timeouts = self.config.timeouts
            self._injectors[url] = Injector(
                url, sut=self.name, connect_timeout=timeouts.connect, reply_timeout=timeouts.reply,
                retry=self.config.retry,
                login=self.config.submission_login if entry == "submission" else None)
        return self._injectors[url]

    @contextmanager
    def _driving(self, step: str, entry: Entry | None = None) -> Iterator[None]:
        """Whatever breaks while driving the SUT becomes one SutError line naming the step."""
        try:
            yield
        except ProtocolError as error:
            last = next((line[3:] for line in reversed(error.transcript) if line.startswith("S: ")),
                        self._injector(entry).last_reply if entry else None)
            raise SutError(self.name, f"{step}, {error.step}", error.detail, last) from error
        except (MailboxError, OSError, subprocess.SubprocessError) as error:
            raise SutError(self.name, step, str(error)) from error

    def _readers(self, plan: Plan) -> dict[str, MailboxReader]:
        """Open (and provision, or empty) every mailbox the plan can reach; the sink's for the rest."""
        timeout = self.config.timeouts.reply
        readers: dict[str, MailboxReader] = {}
        self._provision(plan.mailboxes)
        for address in plan.mailboxes:
            readers[address] = open_mailbox(self.config.mailbox_url(address),
                                            password=self.config.password, timeout=timeout)
            if self.config.mailboxes:
                readers[address].clear()  # a fixed pool carries the last example's mail
        # Relayed copies, and notices to remote reverse-paths, arrive at the sink.
        remote = {e.mailbox for e in plan.expected if e.at_sink}
        remote |= {e.return_path.lower() for e in plan.expected if e.return_path} - set(readers)
        readers.update({address: self.sink.mailbox(address) for address in sorted(remote)})
        return readers

    def _provision(self, addresses: Sequence[str]) -> None:
        template = self.config.provision
        new = [a for a in addresses if a not in self._provisioned]
        if not template or self.config.mailboxes or not new:
            return
        self._run_for(template, new, "provisioning")
        self._provisioned.update(new)

    def _clean_up(self) -> None:
        """End the last example's mailbox sessions and remove the mailboxes it created (both kept
        until now for recheck())."""
        if self._last is not None:
            for reader in self._last.readers.values():
                reader.close()
        created, self._created = self._created, ()
        if created and self._remove_mailboxes:
            self._remove_mailboxes(created)
            self._provisioned.difference_update(created)

    def _run_cleanup(self, addresses: Sequence[str]) -> None:
        assert self.config.cleanup
        self._run_for(self.config.cleanup, addresses, "removing mailbox")

    def _run_for(self, template: str, addresses: Sequence[str], step: str) -> None:
        for command, covered in shell_commands(template, addresses):
            self._run(command, f"{step} {', '.join(covered)}")

    def _run(self, command: str, step: str) -> None:
        done = subprocess.run(command, shell=True, capture_output=True, text=True,
                              cwd=self.config.directory, timeout=self.config.timeouts.reply)
        if done.returncode:
            raise SutError(self.name, step, f"`{command}` exited {done.returncode}",
                           (done.stderr.strip() or done.stdout.strip())[-200:] or None)

    def _idle(self) -> bool:
        assert self.config.idle
        return subprocess.run(self.config.idle, shell=True, capture_output=True,
                              cwd=self.config.directory, timeout=self.config.timeouts.reply).returncode == 0

    def _removal(self) -> str:
        if self.config.mailboxes:
            return "a fixed pool, emptied before each example"
        if self.config.cleanup:
            return "each example's mailboxes are removed by the `cleanup` command once it is done"
        if self._remove_mailboxes:
            return "each example's mailboxes are removed once it is done"
        return ("the mailboxes each example creates are NOT removed (set `cleanup` in the TOML"
                " to remove them)")


def _barrier(token: str) -> bytes:
    """A message the suite sends after the scenario; its own Message-ID, so no store dedups it."""
    return (f"From: mailconform <{_BARRIER_SENDER}>\r\n"
            f"To: undisclosed-recipients:;\r\n"
            f"Subject: mailconform delivery barrier {token}\r\n"
            f"Date: {format_datetime(localtime())}\r\n"
            f"Message-ID: <barrier.{token}@{ID_DOMAIN}>\r\n"
            f"{BARRIER_FIELD.decode()}: {token}\r\n"
            f"\r\n"
            f"Everything sent before this message has been handed over.\r\n").encode()


def _is_barrier(raw: bytes) -> bool:
    """A barrier, or a notice about one (it quotes the barrier's header)."""
    return BARRIER_FIELD + b":" in raw


def _without_barriers(held: _Held) -> _Held:
    return {mailbox: tuple(f for f in filed if not _is_barrier(f[1])) for mailbox, filed in held.items()}


def _count(held: _Held) -> int:
    return sum(map(len, held.values()))
