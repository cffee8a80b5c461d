"""The real-system hand check tells a store that files every path from one that drops duplicates."""

from __future__ import annotations

import mailbox
import socket
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from mailconform.suts.config import SutConfig, Timeouts
from mailconform.suts.real.handcheck import hand_check


class Store:
    """Files each accepted message into ROOT/LOCAL/Maildir; optionally drops or refuses a seen Message-ID."""

    def __init__(self, root: Path, seen: str) -> None:
        self.root, self.seen_policy, self.seen = root, seen, set[str]()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message_id = str(message_from_bytes(envelope.original_content)["Message-ID"])
        if message_id in self.seen and self.seen_policy == "refuse":
            return "550 5.7.1 duplicate refused"
        if message_id not in self.seen or self.seen_policy == "file":
            for rcpt in envelope.rcpt_tos:
                folder = self.root / rcpt.split("@")[0]
                folder.mkdir(exist_ok=True)
                mailbox.Maildir(folder / "Maildir").add(envelope.original_content)
        self.seen.add(message_id)
        return "250 2.0.0 ok"


@pytest.fixture(params=["file", "drop", "refuse"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, SutConfig]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Store(tmp_path, request.param), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield request.param, SutConfig(name=f"store-{request.param}", inject=f"smtp://127.0.0.1:{port}",
                                       domains=("isp.test",), mailbox=f"maildir:{tmp_path}/{{local}}/Maildir",
                                       timeouts=Timeouts(settle=0.05, quiescence=2))
    finally:
        controller.stop()


def test_hand_check_counts_copies_and_owed_paths(store: tuple[str, SutConfig]) -> None:
    """Copies per step are 1,2,3,4 when every path is filed, 1,1,1,1 when duplicates vanish or are refused,
    and a refused path owes nothing."""
    policy, config = store
    out: list[str] = []
    copies, owed = hand_check(config, out)
    assert copies == ([1, 2, 3, 4] if policy == "file" else [1, 1, 1, 1])
    assert owed == ([1, 1, 1, 1] if policy == "refuse" else [1, 2, 3, 4])
    assert ("DATA 550 5.7.1 duplicate refused" in "\n".join(out)) == (policy == "refuse")
