"""The reference delivery model: a scenario becomes transactions and expected copies.

The suite plays every hop outside the SUT -- the originators' agents, the list
server, the forwarding host -- and this module says, as pure functions, what
each of those hops sends and what every mailbox the SUT holds must end up with.

A *path* is the route that carries one copy to one mailbox: the entry, the
hops the suite plays (list, forward, resend) and the recipient that led to the
mailbox.  Every hop the suite plays prepends a Received field naming its
transaction id, so the topmost such id in a copy's trace names the transaction
that brought it; an expected copy is keyed by (mailbox, that id).  The same
final mailbox reached twice inside one transaction is one path: one copy
(RFC 5321 §3.9.1).  The same message sent again over the same route (a
retransmission) is the same path again: its copies name the first
transmission in ``retransmits``, and at least one copy is owed (RFC 1047).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import cached_property
from typing import Literal

from mailconform.specs.content import Content
from mailconform.specs.naming import FORWARD_HOST, LIST_HOST, Naming
from mailconform.specs.scenario import BccMode, Event, Resend, Scenario, Submit

Entry = Literal["mx", "submission"]
Role = Literal["mx", "submission"]

_EPOCH = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
_DATES = {"d1": _EPOCH, "d2": _EPOCH + timedelta(hours=1)}


@dataclass(frozen=True)
class Transaction:
    """One SMTP/LMTP transaction the suite sends into the SUT."""

    id: str
    hop: str
    mail_from: str
    rcpts: tuple[str, ...]
    content: Content
    entry: Entry

    @cached_property
    def data(self) -> bytes:
        """The bytes sent after DATA, built once."""
        return self.content.to_bytes()


@dataclass(frozen=True)
class ExpectedCopy:
    """A copy a mailbox owes to one delivery path."""

    mailbox: str
    path: str
    route: tuple[str, ...]
    requires: tuple[tuple[str, frozenset[str]], ...]
    """(injection id, envelope recipients): owed only if one of them was accepted in each."""
    message: str
    message_id: str
    resent_message_id: str | None
    return_path: str
    trace: tuple[str, ...]
    resent: bool
    may_show_bcc: bool
    """The copy's own Bcc field may list the blind recipients (RFC 5322 §3.6.3, separate copies)."""
    hidden: frozenset[str] = frozenset()
    """Addresses blind-copied by the originator that this copy's recipient must not learn."""
    retransmits: str | None = None
    """For a retransmission over the same route, the path (transaction id) first sent."""
    at_sink: bool = False
    """Relayed by the SUT to a remote host the suite plays, rather than filed by it."""

    @property
    def distinct_path(self) -> tuple[str, str]:
        """(mailbox, first transmission): one key for a path and its retransmissions."""
        return self.mailbox, self.retransmits or self.path


@dataclass(frozen=True)
class Plan:
    scenario: Scenario
    naming: Naming
    roles: frozenset[Role]
    injections: tuple[Transaction, ...]
    expected: tuple[ExpectedCopy, ...]
    aliases: Mapping[str, tuple[str, ...]]

    @property
    def mailboxes(self) -> tuple[str, ...]:
        """Every mailbox in the SUT's domain the story can reach."""
        world = self.scenario.world
        return tuple(self.naming.address(u) for u in world.local_users)


def plan(scenario: Scenario, naming: Naming, roles: Iterable[Role] = ("mx",),
         sut_expands_aliases: bool = True) -> Plan:
    """The transactions the suite sends and the copies the SUT owes for ``scenario``."""
    planner = _Planner(scenario, naming, frozenset(roles), sut_expands_aliases)
    for event in scenario.events:
        planner.play(event)
    world = scenario.world
    return Plan(
        scenario=scenario, naming=naming, roles=planner.roles,
        injections=tuple(planner.injections), expected=tuple(planner.expected),
        aliases={naming.address(a): tuple(naming.address(u) for u in targets)
                 for a, targets in world.aliases},
    )


@dataclass(frozen=True)
class _Carried:
    """What travels along a path so far."""

    content: Content
    message: str
    route: tuple[str, ...] = ()
    requires: tuple[tuple[str, frozenset[str]], ...] = ()
    bcc_copy: bool = False
    hidden: frozenset[str] = frozenset()
    author: str = ""

    def onward(self, content: Content, hop: str | None = None,
               step: tuple[str, frozenset[str]] | None = None, reached: Iterable[str] = ()) -> _Carried:
        """What travels on after one more hop; a recipient reached learns nothing hidden by it."""
        return _Carried(content, self.message, self.route + ((hop,) if hop else ()),
                        self.requires + ((step,) if step else ()), self.bcc_copy,
                        self.hidden - frozenset(reached), self.author)


@dataclass
class _Planner:
    scenario: Scenario
    naming: Naming
    roles: frozenset[Role]
    sut_expands_aliases: bool
    injections: list[Transaction] = field(default_factory=list)
    expected: list[ExpectedCopy] = field(default_factory=list)
    _count: int = 0
    _first_sent: dict[str, tuple[int, int]] = field(default_factory=dict)
    """message -> the slice of `expected` its submission produced."""

    def play(self, event: Event) -> None:
        if isinstance(event, Resend):
            self._resend(event)
            return
        submit = event if isinstance(event, Submit) else self.scenario.submission(event.message)
        start = len(self.expected)
        self._originate(submit.sender, self._original(submit), submit.message,
                        submit.to, submit.cc, submit.bcc, submit.bcc_mode)
        if isinstance(event, Submit):
            self._first_sent[event.message] = (start, len(self.expected))
            return
        # Sent again: the same routes in the same order, so each copy repeats its first one's path.
        first, end = self._first_sent[event.message]
        again = self.expected[start:]
        for n, (earlier, copy) in enumerate(zip(self.expected[first:end], again, strict=True)):
            assert (earlier.mailbox, earlier.route) == (copy.mailbox, copy.route)
            self.expected[start + n] = replace(copy, retransmits=earlier.path)

    def _original(self, submit: Submit) -> Content:
        """The message as its author's user agent writes it, Bcc field included."""
        address = self.naming.address
        headers = [("From", address(submit.sender))]
        for name, symbols in (("To", submit.to), ("Cc", submit.cc), ("Bcc", submit.bcc)):
            if symbols:
                headers.append((name, ", ".join(address(s) for s in symbols)))
        headers += [
            ("Subject", f"story message {submit.message}"),
            ("Date", format_datetime(_DATES[submit.date])),
            ("Message-ID", self.naming.message_id(submit.message_id)),
        ]
        # The nonce keeps bodies of different examples apart: a store that hashes content
        # (Courier's dupfilter) compares a story's messages, not every example's.
        return Content(tuple(headers), f"Body {submit.body} of story {self.naming.nonce}.\n")

    def _resend(self, event: Resend) -> None:
        original = self._original(self.scenario.submission(event.message)).without("Bcc")
        self._count += 1
        block = [("Resent-From", self.naming.address(event.resender)),
                 ("Resent-To", ", ".join(self.naming.address(s) for s in event.to)),
                 ("Resent-Date", format_datetime(self._clock()))]
        if event.with_resent_message_id:
            block.append(("Resent-Message-ID", self.naming.resent_message_id(event.message, self._count)))
        # RFC 5322 §3.6.6: the block goes on top; nothing else changes.
        self._originate(event.resender, original.prepend(*block), event.message,
                        event.to, (), (), "strip")

    def _originate(self, sender: str, content: Content, message: str, to: tuple[str, ...],
                   cc: tuple[str, ...], bcc: tuple[str, ...], mode: BccMode) -> None:
        mail_from = self.naming.address(sender)
        hop = f"{sender}'s agent"
        # Blind-copying oneself, or someone also in To or Cc, hides nothing from anyone.
        hidden = frozenset(self.naming.address(s) for s in set(bcc) - set(to + cc) - {sender})
        if sender.startswith("u") and "submission" in self.roles:
            self._submit_to_sut(hop, mail_from, content, message, to, cc, bcc, mode, hidden)
            return
        for recipients, copy, bcc_copy in _bcc_copies(content, to, cc, bcc, mode):
            self._send(hop, mail_from, recipients,
                       _Carried(copy, message, bcc_copy=bcc_copy, hidden=hidden, author=mail_from))

    def _submit_to_sut(self, hop: str, mail_from: str, content: Content, message: str,
                       to: tuple[str, ...], cc: tuple[str, ...], bcc: tuple[str, ...],
                       mode: BccMode, hidden: frozenset[str]) -> None:
        """The SUT is the originator's submission server: it owes every recipient a copy."""
        # A SUT that does not expand aliases is handed their final users, as on the mx path.
        rcpts = to + cc + bcc if self.sut_expands_aliases else tuple(
            user for symbol in to + cc + bcc
            for user in (self._final_users((symbol,)) if symbol[0] == "a" else (symbol,)))
        tx = self._transaction(hop, mail_from, rcpts, content, "submission")
        blind = set(bcc) - set(to + cc)
        # One transaction reaching a mailbox twice is one path: gather what reaches each user
        # (the addresses as written, and as the envelope named them).
        reaching: dict[str, set[str]] = {}
        enveloped: dict[str, set[str]] = {}
        shows_bcc: dict[str, bool] = {}
        for recipients, copy, _ in _bcc_copies(tx.content, to, cc, bcc, mode):
            for symbol in _unique(recipients):
                address = self.naming.address(symbol)
                # The SUT picks its own §3.6.3 treatment: a blind recipient's copy may show Bcc.
                if symbol[0] not in "ua":
                    carried = _Carried(copy, message, (hop,), ((tx.id, frozenset({address})),),
                                       symbol in blind, hidden - {address}, mail_from)
                    self._expect(address, tx.id, mail_from, carried, "SUT relay", at_sink=True)
                    self._arrive(symbol, mail_from, carried)
                    continue
                for user in self._final_users((symbol,)):
                    reaching.setdefault(user, set()).add(address)
                    enveloped.setdefault(user, set()).add(
                        address if self.sut_expands_aliases else self.naming.address(user))
                    shows_bcc[user] = shows_bcc.get(user, False) or symbol in blind
        for user, addresses in reaching.items():
            carried = _Carried(tx.content, message, (hop,), ((tx.id, frozenset(enveloped[user])),),
                               shows_bcc[user], hidden - addresses, mail_from)
            self._expect(user, tx.id, mail_from, carried, "SUT")

    def _send(self, hop: str, mail_from: str, recipients: Iterable[str], carried: _Carried) -> None:
        """A hop the suite plays sends ``carried`` on, one transaction per destination.

        A recipient named twice is sent twice on the wire, as a plain client does: the SUT
        may merge them (one path, one copy).
        """
        local = [s for s in recipients if s[0] in "ua"]
        if local:
            rcpts = local if self.sut_expands_aliases else self._final_users(local)
            tx = self._transaction(hop, mail_from, rcpts, carried.content, "mx")
            for user in self._final_users(local):
                reaching = frozenset(self.naming.address(s) for s in rcpts
                                     if user in self._final_users((s,)))
                self._expect(user, tx.id, mail_from,
                             carried.onward(tx.content, hop, (tx.id, reaching), reaching), "SUT")
        for symbol in _unique(recipients):
            if symbol[0] in "Lf":
                content = carried.content.prepend(self._received(_host(hop), self._next_id()))
                self._arrive(symbol, mail_from,
                             carried.onward(content, hop, reached=(self.naming.address(symbol),)))

    def _arrive(self, symbol: str, mail_from: str, carried: _Carried) -> None:
        """A list or forwarding host the suite plays has received ``carried``."""
        if symbol[0] == "L":
            lst = self.scenario.world.mailing_list(symbol)
            added = [("List-Post", f"<mailto:{self.naming.address(symbol)}>")]
            if lst.adds_list_id:
                added.insert(0, ("List-Id", self.naming.list_id(symbol)))
            # RFC 5321 §3.9.2: a list sets a new reverse-path and leaves the header alone,
            # RFC 2369/2919 fields aside.
            out = carried.onward(carried.content.append(*added))
            self._send(f"list {symbol}", self.naming.list_bounces(symbol), lst.subscribers, out)
        elif symbol[0] == "f":
            # RFC 5321 §3.9.1: forwarding changes the recipient only.
            self._send(f"forwarder {symbol}", mail_from,
                       (self.scenario.world.forward_target(symbol),), carried)

    def _expect(self, mailbox_symbol_or_address: str, path: str, return_path: str,
                carried: _Carried, last_hop: str, at_sink: bool = False) -> None:
        mailbox = (mailbox_symbol_or_address if "@" in mailbox_symbol_or_address
                   else self.naming.address(mailbox_symbol_or_address))
        content = carried.content
        resent = content.values("Resent-Message-ID")
        self.expected.append(ExpectedCopy(
            mailbox=mailbox, path=path, route=carried.route + (last_hop,),
            requires=carried.requires, message=carried.message,
            message_id=content.values("Message-ID")[0],
            resent_message_id=resent[0] if resent else None,
            return_path=return_path, trace=tuple(content.values("Received")),
            resent=bool(content.values("Resent-From")),
            may_show_bcc=carried.bcc_copy,
            # The author knows whom he blind-copied: his own mailbox hides nothing from him.
            hidden=(frozenset() if mailbox == carried.author
                    else carried.hidden - self._own_addresses(mailbox_symbol_or_address, mailbox)),
            at_sink=at_sink))

    def _own_addresses(self, symbol: str, mailbox: str) -> set[str]:
        """The mailbox's address, and every alias or forward that leads to it alone."""
        world, address = self.scenario.world, self.naming.address
        own = {mailbox}
        own |= {address(a) for a, targets in world.aliases if targets == (symbol,)}
        own |= {address(f) for f, target in world.forwards if target == symbol}
        return own

    def _final_users(self, symbols: Iterable[str]) -> tuple[str, ...]:
        world = self.scenario.world
        users: list[str] = []
        for symbol in symbols:
            users += world.alias_targets(symbol) if symbol.startswith("a") else [symbol]
        return _unique(users)

    def _transaction(self, hop: str, mail_from: str, rcpts: Iterable[str], content: Content,
                     entry: Entry) -> Transaction:
        tx_id = self._next_id()
        tx = Transaction(tx_id, hop, mail_from, tuple(self.naming.address(s) for s in rcpts),
                         content.prepend(self._received(_host(hop), tx_id)), entry)
        self.injections.append(tx)
        return tx

    def _received(self, host: str, tx_id: str) -> tuple[str, str]:
        # No "for <rcpt>" clause: it would disclose Bcc recipients.  Folded where an MTA folds it,
        # so it goes out as written, not through the generic (slow) folding of long fields.
        return ("Received", f"from client.upstream.test (localhost [127.0.0.1])\r\n\tby {host}"
                            f" with ESMTP id {tx_id};\r\n\t{format_datetime(self._clock())}")

    def _next_id(self) -> str:
        self._count += 1
        return self.naming.transaction_id(self._count)

    def _clock(self) -> datetime:
        return _EPOCH + timedelta(minutes=self._count)


def _bcc_copies(content: Content, to: tuple[str, ...], cc: tuple[str, ...], bcc: tuple[str, ...],
                mode: BccMode) -> list[tuple[tuple[str, ...], Content, bool]]:
    """(recipients, content, is-a-Bcc-copy) per copy, under one RFC 5322 §3.6.3 treatment.

    Recipients keep the repeats the author wrote (To and Cc naming one user, say).
    """
    seen = to + cc
    blind = tuple(s for s in _unique(bcc) if s not in seen)
    if mode == "strip":
        return [(seen + blind, content.without("Bcc"), False)]
    if mode == "empty":
        emptied = content.with_value("Bcc", "") if content.values("Bcc") else content
        return [(seen + blind, emptied, False)]
    copies = [(seen, content.without("Bcc"), False)] if seen else []
    return copies + [((s,), content, True) for s in blind]


def _host(hop: str) -> str:
    """The host name a hop the suite plays writes into its Received fields."""
    if hop.startswith("list"):
        return LIST_HOST
    return FORWARD_HOST if hop.startswith("forwarder") else "msa.upstream.test"


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
