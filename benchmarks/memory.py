"""Does a long run against the embedded SUT keep its memory flat?  Compared with bare Hypothesis.

    python benchmarks/memory.py [--examples 5000] [--every 500] [--json PATH]

Two processes, one after the other: the suite judging every invariant against
the embedded SUT as the plugin does (one search of ``--examples`` scenarios, one
judge and play cache for the whole run), and bare Hypothesis drawing as many
scenario-shaped values with an empty test body (the baseline: Hypothesis's own
growth).  Each samples its resident set size after every ``--every`` examples,
during the one run.  Growth is measured from the first sample (once imports and
one-time tables are paid) to the last, and per example between them.  The
embedded side also reports the directories left under its Maildir root.  The
last line is the verdict: flat when the suite grew by no more per
example than bare Hypothesis did.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import given, seed, settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.delivery import _SETTINGS, scenario_shaped, suite_calls, suite_properties  # noqa: E402
from mailconform import run  # noqa: E402
from mailconform.strategies import scenarios  # noqa: E402
from mailconform.suts.embedded import EmbeddedSUT  # noqa: E402

T = TypeVar("T")


def rss_mib() -> float:
    """This process's resident set size now, in MiB (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class Sampler:
    """Prints one JSON line of this process's memory after every ``every`` examples."""

    def __init__(self, every: int, extra: Callable[[], dict[str, Any]] = dict) -> None:
        self.every, self.extra, self.examples = every, extra, 0

    def count(self) -> None:
        self.examples += 1
        if self.examples % self.every == 0:
            self.sample()

    def counted(self, value: T) -> T:
        self.count()
        return value

    def sample(self) -> None:
        gc.collect()
        line = {"examples": self.examples, "rss_mib": round(rss_mib(), 1), **self.extra()}
        print(json.dumps(line), flush=True)


def side(name: str, examples: int, every: int) -> None:
    """Run one side in this process; print one JSON line per sample."""
    if name == "generation":
        sampler = Sampler(every)
        seed(random.getrandbits(64))(settings(_SETTINGS, max_examples=examples)(
            given(scenario_shaped())(lambda value: sampler.count())))()
        return
    sut = EmbeddedSUT()
    sampler = Sampler(every, lambda: {"directories": sum(len(dirs) for _, dirs, _ in os.walk(sut.root))})
    # An example is a scenario the search draws, as on the baseline side: counted as drawn.
    setattr(run, "scenarios", lambda: scenarios().map(sampler.counted))  # noqa: B010
    try:
        suite_calls(suite_properties(), sut, examples)
    finally:
        sut.close()


def measured(name: str, examples: int, every: int) -> list[dict[str, Any]]:
    process = subprocess.Popen([sys.executable, __file__, "--side", name, "--examples", str(examples),
                                "--every", str(every)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout
    samples = []
    for line in process.stdout:
        samples.append(json.loads(line))
        print(f"  {name}: {samples[-1]}", file=sys.stderr, flush=True)
    if process.wait():
        raise SystemExit(f"the {name} side failed (exit {process.returncode})")
    if len(samples) < 2:
        raise SystemExit(f"the {name} side made {len(samples)} sample(s): raise --examples or lower --every")
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--every", type=int, default=500, help="examples between samples (default 500)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--side", choices=("suite", "generation"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        side(args.side, args.examples, args.every)
        return
    results: dict[str, Any] = {}
    for name in ("generation", "suite"):
        samples = measured(name, args.examples, args.every)
        growth = samples[-1]["rss_mib"] - samples[0]["rss_mib"]
        results[name] = {"samples": samples, "examples": samples[-1]["examples"],
                         "growth_mib": round(growth, 1),
                         "kib_per_example": round(growth * 1024 / (samples[-1]["examples"]
                                                                   - samples[0]["examples"]), 2)}
    suite, generation = results["suite"], results["generation"]
    print(f"{'side':<34}  {'examples':>8}  {'RSS first':>9}  {'RSS last':>8}  {'growth':>7}"
          f"  {'per example':>11}")
    for name, title in (("generation", "bare Hypothesis (baseline)"), ("suite", "suite against embedded")):
        r = results[name]
        print(f"{title:<34}  {r['examples']:>8}  {r['samples'][0]['rss_mib']:>7.1f} M"
              f"  {r['samples'][-1]['rss_mib']:>6.1f} M  {r['growth_mib']:>5.1f} M"
              f"  {r['kib_per_example']:>7.2f} KiB")
    flat = suite["kib_per_example"] <= generation["kib_per_example"]
    results["flat"] = flat
    print(f"directories under the embedded Maildir root at the end: {suite['samples'][-1]['directories']}")
    print(f"verdict: {'FLAT' if flat else 'GROWS'} -- the suite's RSS grew {suite['growth_mib']:.1f} MiB"
          f" ({suite['kib_per_example']:.2f} KiB per example), bare Hypothesis's"
          f" {generation['growth_mib']:.1f} MiB ({generation['kib_per_example']:.2f} KiB per example)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"written to {args.json}")


if __name__ == "__main__":
    main()
