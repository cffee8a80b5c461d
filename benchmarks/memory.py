"""Does a long run against the embedded SUT keep its memory flat?  Compared with bare Hypothesis.

    python benchmarks/memory.py [--examples 5000] [--chunk 500] [--json PATH]

Two processes, one after the other: the conformance properties against the
embedded SUT, and bare Hypothesis drawing scenario-shaped data with an empty
test body (the baseline: Hypothesis's own growth).  Each runs its examples in
chunks -- every property once, sharing one seed, ``--chunk`` examples in all,
as a suite run does -- and samples its resident set size after each.  Growth is
measured from the first sample (after the first chunk, once imports and
one-time tables are paid) to the last.  The embedded side also reports the
directories left under its Maildir root.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mib() -> float:
    """This process's resident set size now, in MiB (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def side(name: str, examples: int, chunk: int) -> None:
    """Run one side in this process; print one JSON line per chunk."""
    from benchmarks.delivery import run_properties, scenario_shaped, suite_calls, suite_properties
    from mailconform.suts.embedded import EmbeddedSUT

    bodies = suite_properties()
    sut = EmbeddedSUT() if name == "suite" else None
    done = 0
    try:
        per_property = max(1, chunk // len(bodies))
        while done < examples:
            if sut is None:
                made, _ = run_properties(len(bodies), lambda value: None, scenario_shaped(), per_property)
            else:
                made, _ = suite_calls(bodies, sut, per_property)
            done += made
            gc.collect()
            sample: dict[str, Any] = {"examples": done, "rss_mib": round(rss_mib(), 1)}
            if sut is not None:
                sample["directories"] = sum(len(dirs) for _, dirs, _ in os.walk(sut.root))
            print(json.dumps(sample), flush=True)
    finally:
        if sut is not None:
            sut.close()


def measured(name: str, examples: int, chunk: int) -> list[dict[str, Any]]:
    process = subprocess.Popen([sys.executable, __file__, "--side", name, "--examples", str(examples),
                                "--chunk", str(chunk)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout
    samples = []
    for line in process.stdout:
        samples.append(json.loads(line))
        print(f"  {name}: {samples[-1]}", file=sys.stderr, flush=True)
    if process.wait():
        raise SystemExit(f"the {name} side failed (exit {process.returncode})")
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--chunk", type=int, default=500,
                        help="examples per sample, over all properties (default 500)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--side", choices=("suite", "generation"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        side(args.side, args.examples, args.chunk)
        return
    results: dict[str, Any] = {}
    for name in ("generation", "suite"):
        samples = measured(name, args.examples, args.chunk)
        results[name] = {"samples": samples, "examples": samples[-1]["examples"],
                         "growth_mib": round(samples[-1]["rss_mib"] - samples[0]["rss_mib"], 1)}
    suite, generation = results["suite"], results["generation"]
    print(f"{'side':<34}  {'examples':>8}  {'RSS first':>9}  {'RSS last':>8}  {'growth':>7}")
    for name, title in (("generation", "bare Hypothesis (baseline)"), ("suite", "suite against embedded")):
        r = results[name]
        print(f"{title:<34}  {r['examples']:>8}  {r['samples'][0]['rss_mib']:>7.1f} M"
              f"  {r['samples'][-1]['rss_mib']:>6.1f} M  {r['growth_mib']:>5.1f} M")
    beyond = suite["growth_mib"] - generation["growth_mib"]
    print(f"RSS growth beyond bare Hypothesis's own: {beyond:.1f} MiB;"
          f" directories under the embedded Maildir root at the end: {suite['samples'][-1]['directories']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"written to {args.json}")


if __name__ == "__main__":
    main()
