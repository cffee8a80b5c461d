"""Where else a store loses mail: a fixed set of canonical stories and what each is owed.

After a diagnosis, these stories are played against the same SUT; the impact
table says, per story, how many copies the SUT owed and how many it filed.
Each story is two distinct delivery paths into one mailbox, except the exact
retransmission, which is one path sent twice (RFC 1047: one copy suffices).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from mailconform.specs.invariants import owed
from mailconform.specs.model import Plan
from mailconform.specs.observation import Observation
from mailconform.specs.scenario import MailingList, Resend, Scenario, SendAgain, Submit, World


@dataclass(frozen=True)
class CanonicalStory:
    name: str
    scenario: Scenario
    at_least: int | None = None
    """For a retransmission: the copies that suffice (fewer than the paths the model counts)."""


CANONICAL: tuple[CanonicalStory, ...] = (
    CanonicalStory("post to a list and Bcc to self", Scenario(
        World(("u1",), lists=(MailingList("L1", ("u1",)),)),
        (Submit("m1", "u1", to=("L1",), bcc=("u1",)),))),
    CanonicalStory("to an alias and directly", Scenario(
        World(("u1",), ("r1",), aliases=(("a1", ("u1",)),)),
        (Submit("m1", "r1", to=("u1",), bcc=("a1",), bcc_mode="separate"),))),
    CanonicalStory("through a forwarder and directly", Scenario(
        World(("u1",), ("r1",), forwards=(("f1", "u1"),)),
        (Submit("m1", "r1", to=("u1", "f1")),))),
    CanonicalStory("resent to a recipient who has the original", Scenario(
        World(("u1",), ("r1", "r2")),
        (Submit("m1", "r1", to=("u1", "r2")), Resend("m1", "r2", ("u1",))))),
    CanonicalStory("two different messages sharing a Message-ID", Scenario(
        World(("u1",), ("r1", "r2")),
        (Submit("m1", "r1", to=("u1",)),
         Submit("m2", "r2", to=("u1",), message_id="k1", date="d2", body="b2")))),
    CanonicalStory("the same message retransmitted", Scenario(
        World(("u1",), ("r1",)), (Submit("m1", "r1", to=("u1",)), SendAgain("m1"))), at_least=1),
)


@dataclass(frozen=True)
class ImpactRow:
    story: str
    owed: int
    filed: int
    at_least: int | None = None
    error: str = ""

    @property
    def loses(self) -> bool:
        return not self.error and self.filed < (self.at_least or self.owed)

    def verdict(self) -> str:
        if self.error:
            return f"not played: {self.error}"
        if self.loses:
            return f"LOSES {(self.at_least or self.owed) - self.filed}"
        return "ok (one copy suffices)" if self.at_least and self.filed < self.owed else "ok"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"story": self.story, "owed": self.owed, "filed": self.filed,
                                "loses": self.loses}
        if self.at_least is not None:
            data["at_least"] = self.at_least
        if self.error:
            data["error"] = self.error
        return data


def impact_row(story: CanonicalStory, plan: Plan, observation: Observation) -> ImpactRow:
    """Copies ``plan`` owed in the SUT's own mailboxes, and how many of them were filed."""
    due = [e for e in owed(plan, observation) if not e.at_sink]
    present = Counter((c.mailbox, c.path) for c in observation.copies)
    filed = 0
    for e in due:
        if present[e.mailbox, e.path]:
            present[e.mailbox, e.path] -= 1
            filed += 1
    return ImpactRow(story.name, len(due), filed, story.at_least)


def table(rows: tuple[ImpactRow, ...]) -> list[str]:
    """The impact table as Markdown."""
    lines = ["| story | copies owed | copies filed | verdict |", "|---|---|---|---|"]
    lines += [f"| {r.story} | {r.owed if not r.at_least else f'{r.at_least} (of {r.owed} sent)'} |"
              f" {r.filed} | {r.verdict()} |" for r in rows]
    return lines
