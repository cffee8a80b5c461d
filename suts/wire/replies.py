"""Protocol replies and the error a misbehaving server earns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

TRANSCRIPT_TAIL = 12
"""How many transcript lines a ProtocolError message shows."""


@dataclass(frozen=True)
class Reply:
    """One SMTP/LMTP reply; a multi-line text is joined with newlines."""

    code: int
    text: str

    @property
    def accepted(self) -> bool:
        return 200 <= self.code < 300


@dataclass(frozen=True)
class TransactionReply:
    """Every answer of one mail transaction.

    `rcpts` is keyed by the address as sent; `data` holds the final-dot reply
    for each accepted recipient (SMTP: the single reply, copied; LMTP: one per
    recipient, RFC 2033). A recipient sent twice keeps its first replies.
    """

    mail: Reply
    rcpts: dict[str, Reply]
    data: dict[str, Reply]
    transcript: tuple[str, ...]
    times: tuple[float, ...] = ()
    """When each transcript line was written (seconds since the epoch), where known."""

    def dialogue(self) -> list[str]:
        """The transcript, each line after its UTC time of day (HH:MM:SS.mmm) where known."""
        if len(self.times) != len(self.transcript):
            return list(self.transcript)
        return [f"{datetime.fromtimestamp(t, UTC):%H:%M:%S.%f}"[:-3] + f" {line}"
                for t, line in zip(self.times, self.transcript, strict=True)]

    def delivered_to(self, rcpt: str) -> bool:
        """True when MAIL, this RCPT and its final-dot reply were all 2xx."""
        rcpt_reply, final = self.rcpts.get(rcpt), self.data.get(rcpt)
        return (self.mail.accepted and rcpt_reply is not None and rcpt_reply.accepted
                and final is not None and final.accepted)


class ProtocolError(Exception):
    """The server broke the protocol: garbage, an unexpected reply, a drop or a timeout."""

    def __init__(self, sut: str, step: str, transcript: Sequence[str], detail: str) -> None:
        tail = "\n".join(f"    {line}" for line in list(transcript)[-TRANSCRIPT_TAIL:]) or "    (nothing)"
        super().__init__(f"{sut}: {detail} at {step}\n  transcript (last lines):\n{tail}")
        self.sut = sut
        self.step = step
        self.transcript = tuple(transcript)
        self.detail = detail
