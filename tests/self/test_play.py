"""The driver: one play per scenario for every invariant, and set-up errors told apart from refusals."""

import mailbox
from pathlib import Path

import pytest

from mailconform.specs.scenario import Scenario, Submit, World
from mailconform.suts.base import Player, SutError
from mailconform.suts.config import SutConfig, Timeouts
from mailconform.suts.inprocess import InProcessSUT
from mailconform.suts.network import NetworkSUT
from mailconform.suts.wire import EmbeddedServer, Reply


class ForgetsU2:
    """A store set up for every mailbox but u2's: it answers 550 5.1.1 for u2."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def rcpt(self, address: str) -> Reply:
        if "_u2@" in address:
            return Reply(550, f"5.1.1 <{address}>: Recipient address rejected: User unknown")
        return Reply(250, "2.1.5 ok")

    def deliver(self, mail_from: str, rcpts: list[str], data: bytes) -> list[Reply]:
        for rcpt in rcpts:
            mailbox.Maildir(self.root / rcpt.lower(), create=True).add(data)
        return [Reply(250, "2.0.0 filed") for _ in rcpts]


def to(user: str) -> Scenario:
    return Scenario(World(("u1", "u2"), ("r1",)), (Submit("m1", "r1", (user,)),))


def test_no_such_mailbox_for_a_mailbox_the_suite_set_up_is_a_sut_error(tmp_path: Path) -> None:
    """550 5.1.1 for one of the SUT's own mailboxes is set-up gone wrong, never a refusal that
    quietly leaves the invariants nothing to judge."""
    with EmbeddedServer(ForgetsU2(tmp_path)) as server:
        sut = NetworkSUT(SutConfig(name="forgetful", inject=server.url, domains=("isp.test",),
                                   mailbox=f"maildir:{tmp_path}/{{address}}",
                                   timeouts=Timeouts(settle=0.05, quiescence=2)))
        try:
            player = Player(sut, capacity=4)
            assert player.run(to("u1")).observation.copies  # its other mailboxes work
            with pytest.raises(SutError, match=r"forgetful: answered 'no such mailbox' for a mailbox"
                                               r" the suite set up .* at RCPT TO:<\w+_u2@isp.test>"
                                               r" \(\w+\) \(last reply: 550 5.1.1"):
                player.run(to("u2"))
        finally:
            sut.close()


def test_a_scenario_is_played_once_while_remembered() -> None:
    """The same scenario asked for again is the same play; the oldest plays are forgotten first."""
    player = Player(InProcessSUT(), capacity=2)
    first = player.run(to("u1"))
    assert player.run(to("u1")) is first and player.plays == 1
    player.run(to("u2"))
    player.run(Scenario(World(("u1",)), (Submit("m1", "u1", ("u1",)),)))
    assert player.run(to("u1")) is not first  # forgotten: played again
    assert player.plays == 4
    assert player.offered == 4 and player.refused == 0
