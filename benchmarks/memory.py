"""Does a long run against the embedded SUT keep its memory flat?  Compared with bare Hypothesis.

    python benchmarks/memory.py [--examples 5000] [--every 500] [--rounds 3] [--json PATH]

Three sides, each in a process of its own, drawing ``--examples`` examples in one run:

- ``suite``: the suite judging every invariant against the embedded SUT as the plugin does
  (one search, one judge and play cache for the whole run);
- ``scenarios``: bare Hypothesis drawing the suite's own ``scenarios()`` with an empty body;
- ``shaped``: bare Hypothesis drawing ``scenario_shaped()`` (benchmarks/delivery.py: the same
  choices as ``scenarios()``, kept as plain tuples) with an empty body.

Within a round every side starts from the same seed and counts an example as it is drawn, so
``scenarios`` makes the very choices the suite's search makes: whatever Hypothesis keeps of the
run (its cache of recent test cases, its tree of choices made) is the same on both, and the
difference between them is the suite's own state and what its work leaves in the allocators.
Rounds are interleaved, each with a fresh seed.

Each side samples its resident set size (RSS) after every ``--every`` examples, with where the
memory sits: live Python objects (pymalloc's allocated blocks), pymalloc's arenas (those objects
and the free space among them), the C heap in use (glibc malloc, every arena), and the rest of
the resident set (mostly C heap that is free but still resident: holes smaller than a page,
which no trim can give back).
Growth per example is the least-squares slope over the samples (the first sample is taken once
imports and one-time tables are paid); the growth from first to last sample is shown beside it.
The embedded side also reports the directories left under its Maildir root.

The verdict compares the suite with ``scenarios`` round by round: bare Hypothesis's own growth
for the very draws the suite makes (same seed, same choices) is the faithful reading of "no more
than bare Hypothesis's own", and the paired difference cancels what the seed changes (the
examples' sizes) from round to round.  The suite is FLAT when the median of those differences is
no larger than their spread (max - min): not told apart from noise.  The older comparison (the
suite's median against ``shaped``'s) is printed too, and so is ``scenarios`` against ``shaped``:
what Hypothesis keeps for the suite's strategy beyond the same choices as plain tuples.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import given, seed, settings
from hypothesis.control import current_build_context

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.delivery import _SETTINGS, scenario_shaped, suite_calls, suite_properties  # noqa: E402
from benchmarks.rounds import spread  # noqa: E402
from mailconform import run  # noqa: E402
from mailconform.strategies import scenarios  # noqa: E402
from mailconform.suts.embedded import EmbeddedSUT  # noqa: E402
from mailconform.suts.heap import resident_mib  # noqa: E402

T = TypeVar("T")
SIDES = {"suite": "suite against embedded",
         "scenarios": "bare Hypothesis, scenarios()",
         "shaped": "bare Hypothesis, scenario_shaped()"}
WHERE = {"objects_mib": "Python objects", "arenas_mib": "pymalloc arenas",
         "malloc_used_mib": "C heap in use", "rest_mib": "rest resident"}
MIB = 2**20


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]


def pymalloc_mib() -> dict[str, float]:
    """Bytes in live pymalloc blocks (small Python objects) and in its arenas, from the
    interpreter's own statistics (it writes them to the C stderr, so they are read from a file)."""
    with tempfile.TemporaryFile() as stats:
        saved = os.dup(2)
        sys.stderr.flush()
        os.dup2(stats.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        stats.seek(0)
        lines = stats.read().decode().splitlines()
    numbers = {line.split("=")[0].strip(): int(line.split("=")[1].replace(",", ""))
               for line in lines if line.startswith("#") and "=" in line}
    return {"objects_mib": numbers["# bytes in allocated blocks"] / MIB,
            "arenas_mib": numbers["# arenas allocated current"] * (1 << 20) / MIB}


def malloc_mib() -> dict[str, float]:
    """The C heap (glibc's mallinfo2, every arena): bytes in use, and free but kept."""
    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return {"malloc_used_mib": (info.uordblks + info.hblkhd) / MIB, "malloc_free_mib": info.fordblks / MIB}


class Sampler:
    """Prints one JSON line of this process's memory after every ``every`` examples."""

    def __init__(self, every: int, extra: Callable[[], dict[str, Any]] = dict) -> None:
        self.every, self.extra, self.examples, self.choices = every, extra, 0, 0

    def counted(self, value: T) -> T:
        """Count an example as it is drawn (``value`` is the whole of it) and its choices."""
        self.examples += 1
        self.choices += len(current_build_context().data.nodes)
        if self.examples % self.every == 0:
            self.sample()
        return value

    def sample(self) -> None:
        gc.collect()
        line = {"examples": self.examples, "rss_mib": resident_mib(), **pymalloc_mib(), **malloc_mib()}
        line["rest_mib"] = line["rss_mib"] - line["arenas_mib"] - line["malloc_used_mib"]
        line = {key: round(value, 3) if isinstance(value, float) else value for key, value in line.items()}
        print(json.dumps({**line, "choices_per_example": round(self.choices / self.examples, 2),
                          **self.extra()}), flush=True)


def side(name: str, examples: int, every: int, run_seed: int) -> None:
    """Run one side in this process; print one JSON line per sample."""
    random.seed(run_seed)
    if name in ("scenarios", "shaped"):
        sampler = Sampler(every)
        drawn = (scenarios() if name == "scenarios" else scenario_shaped()).map(sampler.counted)
        seed(random.getrandbits(64))(settings(_SETTINGS, max_examples=examples)(
            given(drawn)(lambda value: None)))()
        return
    sut = EmbeddedSUT()
    sampler = Sampler(every, lambda: {"directories": sum(len(dirs) for _, dirs, _ in os.walk(sut.root))})
    setattr(run, "scenarios", lambda: scenarios().map(sampler.counted))  # noqa: B010
    try:
        suite_calls(suite_properties(), sut, examples)  # seeds its search with random.getrandbits(64)
    finally:
        sut.close()


def measured(name: str, examples: int, every: int, run_seed: int) -> list[dict[str, Any]]:
    process = subprocess.Popen([sys.executable, __file__, "--side", name, "--examples", str(examples),
                                "--every", str(every), "--seed", str(run_seed)],
                               stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout
    samples = []
    for line in process.stdout:
        samples.append(json.loads(line))
        last = samples[-1]
        print(f"  {name}: {last['examples']} examples, RSS {last['rss_mib']:.1f} MiB", file=sys.stderr,
              flush=True)
    if process.wait():
        raise SystemExit(f"the {name} side failed (exit {process.returncode})")
    if len(samples) < 3:
        raise SystemExit(f"the {name} side made {len(samples)} sample(s): raise --examples or lower --every")
    return samples


def slope_kib(samples: list[dict[str, Any]], measure: str) -> float:
    """Least-squares growth of ``measure`` per example over the samples, in KiB."""
    xs = [s["examples"] for s in samples]
    ys = [s[measure] * 1024 for s in samples]
    return statistics.linear_regression(xs, ys).slope


def summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    first, last = samples[0], samples[-1]
    return {"samples": samples, "examples": last["examples"],
            "choices_per_example": last["choices_per_example"],
            "growth_mib": round(last["rss_mib"] - first["rss_mib"], 1),
            "kib_per_example": round(slope_kib(samples, "rss_mib"), 2),
            "first_to_last_kib_per_example": round((last["rss_mib"] - first["rss_mib"]) * 1024
                                                    / (last["examples"] - first["examples"]), 2),
            "where_kib_per_example": {m: round(slope_kib(samples, m), 2) for m in WHERE}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--every", type=int, default=500, help="examples between samples (default 500)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all three sides (default 3)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        side(args.side, args.examples, args.every, args.seed)
        return
    rounds: list[dict[str, Any]] = []
    for number in range(1, args.rounds + 1):
        run_seed = random.getrandbits(32)
        print(f"round {number} of {args.rounds} (seed {run_seed})", file=sys.stderr, flush=True)
        rounds.append({"seed": run_seed, **{name: summary(measured(name, args.examples, args.every, run_seed))
                                            for name in SIDES}})
    per_example = {name: spread([r[name]["kib_per_example"] for r in rounds]) for name in SIDES}
    print(f"\nRSS growth per example (least squares over samples every {args.every}), {args.rounds} rounds:")
    print(f"{'side':<36}  {'median':>8}  {'min':>8}  {'max':>8}  {'first->last':>11}  {'choices':>7}")
    for name, title in SIDES.items():
        s = per_example[name]
        first_to_last = statistics.median(r[name]["first_to_last_kib_per_example"] for r in rounds)
        choices = statistics.median(r[name]["choices_per_example"] for r in rounds)
        print(f"{title:<36}  {s['median']:>4.2f} KiB  {s['min']:>4.2f} KiB  {s['max']:>4.2f} KiB"
              f"  {first_to_last:>7.2f} KiB  {choices:>7.1f}")
    print("\nwhere it sits (KiB per example, median over rounds):")
    print(f"{'side':<36}" + "".join(f"  {title:>15}" for title in WHERE.values()))
    for name, title in SIDES.items():
        print(f"{title:<36}" + "".join(
            f"  {statistics.median(r[name]['where_kib_per_example'][m] for r in rounds):>15.2f}"
            for m in WHERE))
    paired = [r["suite"]["kib_per_example"] - r["scenarios"]["kib_per_example"] for r in rounds]
    gap, noise = statistics.median(paired), max(paired) - min(paired)
    flat = gap <= noise
    suite, bare, shaped = (per_example[name]["median"] for name in ("suite", "scenarios", "shaped"))
    comparisons = {"suite_minus_scenarios_kib": spread([round(d, 2) for d in paired]),
                   "suite_minus_shaped_kib": round(suite - shaped, 2),
                   "scenarios_minus_shaped_kib": round(bare - shaped, 2)}
    directories = max(s.get("directories", 0) for r in rounds for s in r["suite"]["samples"])
    print(f"\ndirectories under the embedded Maildir root, most at any sample: {directories}")
    print(f"suite - shaped (the older comparison, medians): {suite - shaped:+.2f} KiB per example;"
          f" scenarios - shaped (Hypothesis's records for our strategy): {bare - shaped:+.2f} KiB")
    print(f"verdict: {'FLAT' if flat else 'GROWS'} -- the suite's RSS grew {gap:+.2f} KiB per example more"
          f" than bare Hypothesis drawing the same scenarios (median of {len(rounds)} rounds, each from"
          f" one seed: {', '.join(f'{d:+.2f}' for d in paired)}; spread {noise:.2f}) -- suite {suite:.2f},"
          f" bare {bare:.2f} KiB per example")
    if args.json:
        args.json.write_text(json.dumps({"examples": args.examples, "every": args.every,
                                         "per_example_kib": per_example, **comparisons, "flat": flat,
                                         "most_directories": directories, "rounds": rounds},
                                        indent=2) + "\n")
        print(f"written to {args.json}")


if __name__ == "__main__":
    main()
