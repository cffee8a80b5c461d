"""A DeliveryHandler for tests: refuses, defers and records by recipient name."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailconform.suts.wire import Reply


@dataclass
class Recorder:
    """Refuses RCPTs to nobody*@, answers 452 at the dot for full*@, files the rest in memory."""

    deliveries: list[tuple[str, list[str], bytes]] = field(default_factory=list)

    def rcpt(self, address: str) -> Reply:
        if address.startswith("nobody"):
            return Reply(550, "5.1.1 no such user")
        return Reply(250, "2.1.5 ok")

    def deliver(self, mail_from: str, rcpts: list[str], data: bytes) -> list[Reply]:
        self.deliveries.append((mail_from, rcpts, data))
        return [Reply(452, "4.2.2 mailbox full") if rcpt.startswith("full")
                else Reply(250, f"2.0.0 filed for {rcpt}") for rcpt in rcpts]
