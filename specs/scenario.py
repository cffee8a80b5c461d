"""Symbolic scenarios: a world of mail users and a story of events played in it.

Everything here is a symbol (u1, L1, m1, ...) so that a shrunk scenario reads
as a short story.  Concrete addresses and Message-IDs are made by `naming`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

BccMode = Literal["strip", "separate", "empty"]
"""The three Bcc treatments RFC 5322 §3.6.3 allows the originator's agent."""


@dataclass(frozen=True)
class MailingList:
    """A list server's list: who receives its fan-out, and whether it adds List-Id."""

    name: str
    subscribers: tuple[str, ...]
    adds_list_id: bool = True


@dataclass(frozen=True)
class World:
    """Users and the routing facts around the SUT's domain.

    Symbol prefixes fix the domain: ``u`` local users of the SUT, ``r`` remote
    users, ``L`` lists on the list host, ``a`` aliases in the SUT's domain,
    ``f`` remote addresses that forward into the SUT's domain.
    """

    local_users: tuple[str, ...]
    remote_users: tuple[str, ...] = ()
    lists: tuple[MailingList, ...] = ()
    aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()
    forwards: tuple[tuple[str, str], ...] = ()

    def mailing_list(self, name: str) -> MailingList:
        return next(lst for lst in self.lists if lst.name == name)

    def alias_targets(self, name: str) -> tuple[str, ...]:
        return dict(self.aliases)[name]

    def forward_target(self, name: str) -> str:
        return dict(self.forwards)[name]


@dataclass(frozen=True)
class Submit:
    """An originator submits a new message ``message``.

    ``message_id``, ``date`` and ``body`` are symbols from small pools, so two
    different messages can collide on Message-ID, share a Date or a body:
    exactly the axes real duplicate-suppression rules key on.
    """

    message: str
    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    bcc_mode: BccMode = "strip"
    message_id: str = "k1"
    date: str = "d1"
    body: str = "b1"


@dataclass(frozen=True)
class Resend:
    """A user re-introduces an earlier message to new recipients (RFC 5322 §3.6.6)."""

    message: str
    resender: str
    to: tuple[str, ...]
    with_resent_message_id: bool = True


@dataclass(frozen=True)
class SendAgain:
    """The originator's agent transmits the very same message once more."""

    message: str


Event = Submit | Resend | SendAgain


@dataclass(frozen=True)
class Scenario:
    world: World
    events: tuple[Event, ...] = field(default=())

    @property
    def messages(self) -> tuple[str, ...]:
        """Distinct messages the story submits."""
        return tuple(e.message for e in self.events if isinstance(e, Submit))

    def submission(self, message: str) -> Submit:
        return next(e for e in self.events if isinstance(e, Submit) and e.message == message)

    def story(self) -> str:
        """The scenario as a few readable lines."""
        return "\n".join(_world_lines(self.world) + [_event_line(e) for e in self.events])


_BCC_TREATMENT = {"strip": "Bcc field removed", "separate": "separate Bcc copies",
                  "empty": "Bcc field left empty"}


def _world_lines(world: World) -> list[str]:
    lines = ["local users: " + ", ".join(world.local_users)]
    if world.remote_users:
        lines.append("remote users: " + ", ".join(world.remote_users))
    for lst in world.lists:
        extra = "" if lst.adds_list_id else " (adds no List-Id)"
        lines.append(f"list {lst.name}: " + ", ".join(lst.subscribers) + extra)
    lines += [f"alias {name} -> " + ", ".join(targets) for name, targets in world.aliases]
    lines += [f"forward {name} -> {target}" for name, target in world.forwards]
    return lines


def _event_line(event: Event) -> str:
    if isinstance(event, Submit):
        parts = [f"{event.sender} sends {event.message} (Message-ID {event.message_id},"
                 f" Date {event.date}, body {event.body})", "to " + (", ".join(event.to) or "nobody")]
        if event.cc:
            parts.append("cc " + ", ".join(event.cc))
        if event.bcc:
            parts.append(f"bcc {', '.join(event.bcc)} [{_BCC_TREATMENT[event.bcc_mode]}]")
        return " ".join(parts)
    if isinstance(event, Resend):
        rid = "with" if event.with_resent_message_id else "without"
        return f"{event.resender} resends {event.message} to {', '.join(event.to)} ({rid} Resent-Message-ID)"
    return f"{event.message} is sent again"
