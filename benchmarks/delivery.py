"""How close the suite runs to its ceilings, as ratios against baselines measured in the same run.

    python benchmarks/delivery.py [--transactions N] [--examples N]

Baselines: raw smtplib to a bare aiosmtpd Maildir store on one reused
connection (the delivery ceiling), and Hypothesis drawing plain lists of text
of scenario size (the generation ceiling).  Ratios near 1.0 mean the suite adds
little; the numbers are for this machine and this run only.
"""

from __future__ import annotations

import argparse
import mailbox
import smtplib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import Phase, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailconform.specs.scenario import MailingList, Scenario, Submit, World
from mailconform.strategies import scenarios
from mailconform.suts.base import execute
from mailconform.suts.embedded import EmbeddedSUT
from mailconform.suts.wire import EmbeddedServer, Injector, Reply

MESSAGE = (b"From: r1@remote.example\r\nTo: u1@isp.test\r\nSubject: bench\r\n"
           b"Message-ID: <bench@ids.example>\r\n\r\nbody\r\n")


class _BareStore:
    """The least a Maildir store can do: file every copy."""

    def __init__(self, root: Path) -> None:
        self.box = mailbox.Maildir(root, create=True)

    def rcpt(self, address: str) -> Reply:
        return Reply(250, "ok")

    def deliver(self, mail_from: str, rcpts: list[str], data: bytes) -> list[Reply]:
        for _ in rcpts:
            self.box.add(data)
        return [Reply(250, "ok") for _ in rcpts]


def _rate(count: int, run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    for _ in range(count):
        run()
    return count / (time.perf_counter() - start)


def _generation_rate(strategy: st.SearchStrategy[Any], examples: int) -> float:
    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate])
    @given(strategy)
    def draw(value: Any) -> None:
        pass
    start = time.perf_counter()
    draw()
    return examples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=500)
    parser.add_argument("--examples", type=int, default=300)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as root, EmbeddedServer(_BareStore(Path(root) / "Maildir")) as bare:
        host, port = bare.url.removeprefix("smtp://").split(":")
        with smtplib.SMTP(host, int(port)) as raw:
            baseline = _rate(args.transactions, lambda: raw.sendmail("r1@remote.example",
                                                                     ["u1@isp.test"], MESSAGE))
        with Injector(bare.url, sut="bench") as injector:
            injected = _rate(args.transactions, lambda: injector.send("r1@remote.example",
                                                                      ["u1@isp.test"], MESSAGE))
    rows.append(("delivery ceiling: smtplib, reused connection, bare Maildir store", baseline, 1.0))
    rows.append(("suite injector into the same store", injected, injected / baseline))
    sut = EmbeddedSUT()
    try:
        story = Scenario(World(("u1",), ("r1",), (MailingList("L1", ("u1",)),)),
                         (Submit("m1", "u1", ("L1",), bcc=("u1",)),))
        transactions = len(execute(sut, story).plan.injections)
        played = _rate(args.transactions // transactions, lambda: execute(sut, story)) * transactions
    finally:
        sut.close()
    rows.append(("embedded SUT end to end (plan, inject, read, sort), per transaction", played,
                 played / baseline))
    plain = _generation_rate(st.lists(st.tuples(st.text(max_size=4), st.lists(st.text(max_size=4),
                                                                               max_size=3)),
                                      max_size=6), args.examples)
    drawn = _generation_rate(scenarios(), args.examples)
    rows.append(("generation ceiling: lists of text of scenario size, per second", plain, 1.0))
    rows.append(("scenarios() per second", drawn, drawn / plain))
    width = max(len(name) for name, _, _ in rows)
    print(f"{'measurement':<{width}}  {'per second':>10}  {'ratio':>6}")
    for name, rate, ratio in rows:
        print(f"{name:<{width}}  {rate:>10.0f}  {ratio:>6.2f}")


if __name__ == "__main__":
    main()
