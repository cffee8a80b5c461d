"""How close the suite runs to its ceilings, as ratios against baselines measured in the same run.

    python benchmarks/delivery.py [--json PATH] [--rounds N] [--examples N] [--network-examples N]

Five comparisons, each a ratio of the suite's rate to a baseline's rate:

- inprocess_vs_generation: the suite against `--sut reference` as the plugin
  runs it (one search judging every invariant, then a property for each one it
  broke), in scenarios judged per second, vs bare Hypothesis drawing data of the
  same shape as a scenario (the same integers, sampled_from and lists) with an
  empty test body, as one property with the same settings.
- embedded_smtp_vs_raw / embedded_lmtp_vs_raw: the suite against the
  embedded SUT (transactions the suite sent per second, end to end: generate,
  plan, inject, read back, judge) vs raw smtplib sending a suite-sized message
  on one reused connection into a bare aiosmtpd Maildir store kept where the
  embedded SUT keeps its Maildirs.
- embedded_smtp_vs_replay: the same suite rounds as embedded_smtp_vs_raw vs raw
  smtplib sending those very transactions again (same envelopes, same bytes)
  into the same embedded server: how close the suite runs to the pace of the
  server it tests, whose own filing work the bare store does not do.
- external_smtp_vs_raw: the suite against a separate aiosmtpd Maildir
  server process (tests/servers/store.py, described by a minimal
  --sut-config file, its Maildirs where the embedded SUT keeps its own) vs
  raw smtplib into that same server.

Each comparison over the wire also prints its ceiling: the ratio a suite would
reach that drew each scenario at bare Hypothesis's rate (from the same round)
and sent its transactions at the baseline's rate, doing nothing else.  It is
what one Hypothesis draw per scenario leaves room for, whatever the suite does.

Rounds are interleaved (suite, baseline, suite, baseline ...) after one
warm-up round that is thrown away, so Hypothesis's one-time costs and a busy
machine weigh on both sides alike.  Rates divide by what was actually done:
test-body calls, transactions played, messages sent.  Numbers are for this
machine and this run only; the ratios are what compare across runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import mailbox
import os
import pkgutil
import random
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import mailconform.conformance  # noqa: E402
from benchmarks.rounds import spread  # noqa: E402
from mailconform.run import Judge  # noqa: E402
from mailconform.specs.explain import InvariantViolation  # noqa: E402
from mailconform.specs.model import Plan, Transaction, plan  # noqa: E402
from mailconform.specs.naming import Naming  # noqa: E402
from mailconform.specs.observation import Observation  # noqa: E402
from mailconform.strategies import SEED_STORY  # noqa: E402
from mailconform.strategies.scenarios import BCC_MODES, BODIES, DATES  # noqa: E402
from mailconform.suts.base import Player, SystemUnderTest  # noqa: E402
from mailconform.suts.config import load as load_config  # noqa: E402
from mailconform.suts.embedded import EmbeddedSUT, maildir_root  # noqa: E402
from mailconform.suts.inprocess import InProcessSUT  # noqa: E402
from mailconform.suts.network import NetworkSUT  # noqa: E402
from mailconform.suts.wire import EmbeddedServer, Reply  # noqa: E402

STORE = ROOT / "tests" / "servers" / "store.py"
_MESSAGE = plan(SEED_STORY, Naming("bench")).injections[0].data
"""A message the size the suite sends."""
_SETTINGS = settings(database=None, deadline=None, phases=[Phase.generate],
                     suppress_health_check=list(HealthCheck))


# -- the two sides of (a): the suite's search and properties, and bare generation ------------------

def suite_properties() -> dict[str, Callable[..., None]]:
    """Invariant -> its conformance property, as pytest collects it."""
    properties = {}
    for info in pkgutil.iter_modules(mailconform.conformance.__path__):
        module = importlib.import_module(f"mailconform.conformance.{info.name}")
        for name, value in sorted(vars(module).items()):
            if name.startswith("test_") and hasattr(value, "hypothesis"):
                (marker,) = [m for m in value.pytestmark if m.name == "invariant"]
                properties[marker.args[0]] = value
    return properties


@cache
def _lists(pool: tuple[int, ...], max_size: int, min_size: int = 0,
           unique: bool = False) -> st.SearchStrategy[list[int]]:
    """Built once per pool and size, as `scenarios()` builds its own."""
    return st.lists(st.sampled_from(pool), min_size=min_size, max_size=max_size, unique=unique)


@st.composite
def scenario_shaped(draw: st.DrawFn, max_events: int = 4) -> tuple[Any, ...]:
    """The draws `scenarios()` makes (same choices, same sizes), kept as plain tuples: no model."""
    local = tuple(range(draw(st.integers(1, 3))))
    remote = tuple(range(draw(st.integers(0, 2))))
    aliases = [draw(_lists(local, 2, min_size=1, unique=True)) for _ in range(draw(st.integers(0, 1)))]
    forwards = [draw(st.sampled_from(local)) for _ in range(draw(st.integers(0, 1)))]
    members = local + remote + tuple(range(len(aliases) + len(forwards)))
    lists = [(draw(_lists(members, 3, min_size=1, unique=True)), draw(st.booleans()))
             for _ in range(draw(st.integers(0, 2)))]
    pool = tuple(range(len(local) + len(remote) + len(lists) + len(aliases) + len(forwards)))
    senders = local + remote

    def submission() -> tuple[Any, ...]:
        sender = draw(st.sampled_from(senders))
        others = tuple(u for u in local if u != sender)
        if len(others) > 1 and draw(st.sampled_from((False, True))):
            seen = draw(st.sampled_from(others))
            blind = draw(st.sampled_from(tuple(u for u in others if u != seen)))
            return (sender, seen, blind, draw(st.sampled_from(BCC_MODES[:2])),
                    draw(st.sampled_from(DATES)), draw(st.sampled_from(BODIES)))
        to, cc, bcc = (draw(_lists(pool, size)) for size in (3, 2, 2))
        if not (to or cc or bcc):
            to = [draw(st.sampled_from(pool))]
        return (to, cc, bcc, sender, draw(st.sampled_from(BCC_MODES)),
                draw(st.sampled_from(DATES)), draw(st.sampled_from(BODIES)))
    events = [submission()]
    for _ in range(draw(st.integers(0, max_events - 1))):
        kind = draw(st.sampled_from(("again", "resend", "submit")))
        if kind == "again":
            events.append((draw(st.sampled_from(range(len(events)))),))
        elif kind == "resend":
            events.append((draw(st.sampled_from(range(len(events)))), draw(st.sampled_from(senders)),
                           draw(_lists(pool, 2, min_size=1)), draw(st.booleans())))
        else:
            events.append((draw(st.booleans()), submission()))
    return (local, remote, aliases, forwards, lists, events)


def generated(examples: int) -> tuple[int, float]:
    """Bare Hypothesis: one property drawing ``examples`` scenario-shaped values with an empty
    body, as the search draws; (test-body calls made, seconds)."""
    calls = 0

    def counted(value: Any) -> None:
        nonlocal calls
        calls += 1
    start = time.perf_counter()
    seed(random.getrandbits(64))(settings(_SETTINGS, max_examples=examples)(
        given(scenario_shaped())(counted)))()
    return calls, time.perf_counter() - start


# -- transactions the suite plays, counted at the SUT ---------------------------------------------

class Played:
    """A SUT that counts the transactions it is actually sent (a play the driver reuses is not)."""

    def __init__(self, sut: SystemUnderTest, recording: bool = False) -> None:
        self.sut = sut
        self.recording = recording
        self.name, self.transport, self.roles = sut.name, sut.transport, sut.roles
        self.expands_aliases = sut.expands_aliases
        self.transactions = 0
        self.sent: list[Transaction] = []
        """When recording: every transaction sent in the latest round, for replaying raw."""

    def naming(self, nonce: str) -> Naming:
        return self.sut.naming(nonce)

    def preflight(self) -> None:
        self.sut.preflight()

    def play(self, the_plan: Plan) -> Observation:
        self.transactions += len(the_plan.injections)
        if self.recording:
            self.sent += the_plan.injections
        return self.sut.play(the_plan)

    def recheck(self, the_plan: Plan) -> Observation:
        return self.sut.recheck(the_plan)

    def close(self) -> None:
        self.sut.close()


def suite_calls(properties: dict[str, Callable[..., None]], sut: SystemUnderTest, examples: int
                ) -> tuple[int, float]:
    """Judge every invariant against ``sut`` as the plugin does: one search draws and plays each
    scenario once for all of them, then each invariant it broke runs its property (same seed) to
    shrink.  (scenarios judged, seconds)."""
    judge = Judge(Player(sut))
    common = random.getrandbits(64)
    profile = settings(_SETTINGS, max_examples=examples)
    start = time.perf_counter()
    judge.search(list(properties), profile, common)
    for invariant, tally in judge.tallies.items():
        if tally.first_violation is not None:
            test = properties[invariant]
            with suppress(InvariantViolation):
                seed(common)(settings(profile, phases=[Phase.generate, Phase.shrink])(test))(judge=judge)
    return max(t.examples for t in judge.tallies.values()), time.perf_counter() - start


def suite_tx_rate(properties: dict[str, Callable[..., None]], played: Played, examples: int
                  ) -> tuple[float, float]:
    """Transactions per second the suite sends into a SUT, end to end; and per scenario judged."""
    before = played.transactions
    played.sent = []
    scenarios, seconds = suite_calls(properties, played, examples)
    return (played.transactions - before) / seconds, (played.transactions - before) / scenarios


def ceiling(per_scenario: float, generation_rate: float, raw_rate: float) -> float:
    """The best ratio to ``raw_rate`` of a suite that draws each scenario with Hypothesis (at the
    bare ``generation_rate``), then sends its ``per_scenario`` transactions at the raw pace, and
    costs nothing else: drawing and sending take turns, as they do in one process."""
    return per_scenario / (raw_rate / generation_rate + per_scenario)


def replay_tx_rate(sut: EmbeddedSUT, sent: list[Transaction]) -> float:
    """Transactions per second raw smtplib sends replaying ``sent`` (envelopes and bytes as the
    suite sent them) into the same embedded server, one reused connection per entry."""
    urls = {"mx": sut.config.inject, "submission": sut.config.submission}
    clients = {entry: smtplib.SMTP(*_host_port(url)) for entry, url in urls.items() if url}
    start = time.perf_counter()
    for tx in sent:
        with suppress(smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError):  # an answer all the same
            clients[tx.entry].sendmail(tx.mail_from, list(tx.rcpts), tx.data)
    rate = len(sent) / (time.perf_counter() - start)
    for client in clients.values():
        client.quit()
    return rate


def raw_tx_rate(client: smtplib.SMTP, seconds: float) -> float:
    """Messages per second raw smtplib sends on one reused connection, for about ``seconds``."""
    sent = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        client.sendmail("r1@remote.example", ["u1@isp.test"], _MESSAGE)
        sent += 1
    return sent / (time.perf_counter() - start)


class BareStore:
    """The least a Maildir store can do: file every copy it is sent."""

    def __init__(self, root: Path) -> None:
        self.box = mailbox.Maildir(root, create=True)

    def rcpt(self, address: str) -> Reply:
        return Reply(250, "ok")

    def deliver(self, mail_from: str, rcpts: list[str], data: bytes) -> list[Reply]:
        for _ in rcpts:
            self.box.add(data)
        return [Reply(250, "ok") for _ in rcpts]


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.partition("://")[2].split(":")
    return host, int(port)


@contextmanager
def bare_server(protocol: str) -> Iterator[smtplib.SMTP]:
    """Raw smtplib (or smtplib.LMTP) connected to a bare aiosmtpd Maildir store."""
    with tempfile.TemporaryDirectory(dir=maildir_root()) as root, \
            EmbeddedServer(BareStore(Path(root) / "Maildir"), protocol=protocol) as server:  # type: ignore[arg-type]
        host, port = _host_port(server.url)
        client = smtplib.LMTP(host, port) if protocol == "lmtp" else smtplib.SMTP(host, port)
        with client:
            yield client


@contextmanager
def external_server() -> Iterator[tuple[NetworkSUT, smtplib.SMTP]]:
    """store.py in its own process; the suite's SUT for it (from a TOML file) and a raw client."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory(dir=maildir_root()) as root:
        process = subprocess.Popen([sys.executable, str(STORE), "--port", str(port),
                                    "--root", f"{root}/mail"], stdout=subprocess.PIPE, text=True)
        try:
            assert process.stdout and process.stdout.readline().strip() == "ready"
            config = Path(root) / "tiny.toml"
            config.write_text(f'name = "tiny-mx"\ninject = "smtp://127.0.0.1:{port}"\n'
                              f'domains = ["isp.test"]\nmailbox = "maildir:{root}/mail/{{local}}/Maildir"\n')
            sut = NetworkSUT(load_config(config, dict(os.environ)))
            try:
                sut.preflight()
                with smtplib.SMTP("127.0.0.1", port) as client:
                    yield sut, client
            finally:
                sut.close()
        finally:
            process.terminate()
            process.wait(timeout=10)


# -- rounds ---------------------------------------------------------------------------------------

@dataclass
class Comparison:
    key: str
    title: str
    unit: str
    suite: Callable[[int], float]
    baseline: Callable[[int], float]
    bound: Callable[[float], float] | None = None
    """The round's ceiling ratio, given its baseline rate (for suites sending over the wire)."""
    ratios: list[float] = field(default_factory=list)
    suite_rates: list[float] = field(default_factory=list)
    baseline_rates: list[float] = field(default_factory=list)
    ceilings: list[float] = field(default_factory=list)

    def run(self, size: int, keep: bool, suite_first: bool) -> None:
        sides = [self.suite, self.baseline] if suite_first else [self.baseline, self.suite]
        rates = [side(size) for side in sides]
        suite, baseline = rates if suite_first else rates[::-1]
        if keep:
            self.suite_rates.append(suite)
            self.baseline_rates.append(baseline)
            self.ratios.append(suite / baseline)
            if self.bound:
                self.ceilings.append(self.bound(baseline))

    def summary(self) -> dict[str, float | int]:
        return spread(self.ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (default 3, at least 3)")
    # Rounds of 40 and 15 examples last well under a second on either side: too short to be steady.
    parser.add_argument("--examples", type=int, default=200,
                        help="examples per property in-process (default 200)")
    parser.add_argument("--network-examples", type=int, default=50,
                        help="examples per property over the wire (default 50)")
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds must be at least 3: one round is an anecdote")
    properties = suite_properties()
    reference = InProcessSUT()
    embedded = {protocol: EmbeddedSUT(protocol=protocol) for protocol in ("smtp", "lmtp")}
    try:
        results = measure(args, properties, reference, embedded)
    finally:
        for sut in embedded.values():
            sut.close()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"written to {args.json}")


def measure(args: argparse.Namespace, properties: dict[str, Callable[..., None]], reference: SystemUnderTest,
            embedded: dict[str, EmbeddedSUT]) -> dict[str, Any]:
    with bare_server("smtp") as raw_smtp, bare_server("lmtp") as raw_lmtp, \
            external_server() as (external, raw_external):
        for sut in embedded.values():
            sut.preflight()
        network_seconds: dict[str, float] = {}
        network_rates: dict[str, float] = {}
        per_scenario: dict[str, float] = {}
        generation_rates: list[float] = []
        played_smtp = Played(embedded["smtp"], recording=True)

        def timed_suite(key: str, sut: SystemUnderTest, played: Played | None = None
                        ) -> Callable[[int], float]:
            played = played or Played(sut)

            def run(size: int) -> float:
                start = time.perf_counter()
                rate, per_scenario[key] = suite_tx_rate(properties, played, size)
                network_rates[key] = rate
                network_seconds[key] = time.perf_counter() - start
                return rate
            return run

        def raw(key: str, client: smtplib.SMTP) -> Callable[[int], float]:
            # As long as the suite side took, within reason: both sides see the same machine load.
            return lambda size: raw_tx_rate(client, min(max(network_seconds.get(key, 1.0), 0.5), 5.0))

        def generation(size: int) -> float:
            calls, seconds = generated(size)
            generation_rates.append(calls / seconds)
            return calls / seconds

        def bound(key: str) -> Callable[[float], float]:
            # Measured in this round: the latest generation rate and the suite's transactions per scenario.
            return lambda raw_rate: ceiling(per_scenario[key], generation_rates[-1], raw_rate)

        def inprocess(size: int) -> float:
            calls, seconds = suite_calls(properties, reference, size)
            return calls / seconds

        comparisons = [
            Comparison("inprocess_vs_generation", "in-process suite vs bare Hypothesis generation",
                       "examples/s", inprocess, generation),
            Comparison("embedded_smtp_vs_raw", "embedded SMTP suite vs raw smtplib into a bare store",
                       "tx/s", timed_suite("smtp", embedded["smtp"], played_smtp), raw("smtp", raw_smtp),
                       bound("smtp")),
            # The same suite round, against the server's own pace: its transactions sent again raw.
            Comparison("embedded_smtp_vs_replay", "embedded SMTP suite vs its transactions replayed raw",
                       "tx/s", lambda size: network_rates["smtp"],
                       lambda size: replay_tx_rate(embedded["smtp"], played_smtp.sent)),
            Comparison("embedded_lmtp_vs_raw", "embedded LMTP suite vs raw smtplib.LMTP into a bare store",
                       "tx/s", timed_suite("lmtp", embedded["lmtp"]), raw("lmtp", raw_lmtp), bound("lmtp")),
            Comparison("external_smtp_vs_raw", "external server: suite vs raw smtplib into it",
                       "tx/s", timed_suite("external", external), raw("external", raw_external),
                       bound("external")),
        ]
        load_before = os.getloadavg()
        for round_number in range(args.rounds + 1):
            keep = round_number > 0  # round 0 warms up: imports, Hypothesis tables, connections
            label = "warm-up" if not keep else f"round {round_number}/{args.rounds}"
            print(f"{label} ...", file=sys.stderr, flush=True)
            for comparison in comparisons:
                size = args.examples if comparison.unit == "examples/s" else args.network_examples
                comparison.run(size if keep else max(2, size // 4), keep, suite_first=round_number % 2 == 1)
        load_after = os.getloadavg()
    results: dict[str, Any] = {c.key: c.summary() for c in comparisons}
    results["ceilings"] = {c.key: spread(c.ceilings) for c in comparisons if c.ceilings}
    results["rates"] = {c.key: {"unit": c.unit, "suite": [round(r, 1) for r in c.suite_rates],
                                "baseline": [round(r, 1) for r in c.baseline_rates]} for c in comparisons}
    results["machine"] = {"cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
                          "load_after": [round(x, 2) for x in load_after],
                          "examples_per_property": {"inprocess": args.examples,
                                                    "network": args.network_examples}}
    print_table(comparisons, results["machine"])
    return results


def print_table(comparisons: list[Comparison], machine: dict[str, Any]) -> None:
    width = max(len(c.title) for c in comparisons)
    print(f"{'comparison':<{width}}  {'suite':>9}  {'baseline':>9}  {'unit':<10}  "
          f"{'ratio median':>12}  {'min':>5}  {'max':>5}  {'ceiling':>7}")
    for c in comparisons:
        s = c.summary()
        bound = f"{statistics.median(c.ceilings):>7.2f}" if c.ceilings else f"{'':>7}"
        print(f"{c.title:<{width}}  {statistics.median(c.suite_rates):>9.1f}  "
              f"{statistics.median(c.baseline_rates):>9.1f}  {c.unit:<10}  {s['median']:>12.2f}  "
              f"{s['min']:>5.2f}  {s['max']:>5.2f}  {bound}")
    print(f"{len(comparisons[0].ratios)} rounds after a warm-up; rates are medians; load average"
          f" {machine['load_before'][0]:.2f} before, {machine['load_after'][0]:.2f} after,"
          f" on {machine['cpus']} CPUs")
    print("ceiling: the ratio a suite would reach that drew each scenario at bare Hypothesis's rate"
          " and sent its transactions at the baseline's, doing nothing else")


if __name__ == "__main__":
    main()
