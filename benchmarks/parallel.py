"""Whether `pytest -n N` (pytest-xdist) pays: the suite run serially vs split across N workers.

    python benchmarks/parallel.py [--json PATH] [--rounds N] [--workers N] [--profile NAME] [--sut SUT]

Each round runs the conformance suite twice as a user runs it, a fresh `python -m pytest`
process each time with the same --hypothesis-seed and MAILCONFORM_PROFILE: serially and with
`-n N`, the order alternating from round to round, after one warm-up pair that is thrown away.
It prints, per round and as median/min/max, the speedup serial/parallel of the wall time
(Python's and the workers' start-up included) and of pytest's own session time ("in X s"),
the CPU time of all the run's processes (what splitting the work adds to it: the workers'
start-up, and every worker drawing every scenario), and whether both runs gave every invariant
the same outcome, evidence and minimal story.
The machine's load average is printed with the numbers: the workers share its cores with
whatever else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.rounds import spread  # noqa: E402

_SESSION_TIME = re.compile(r" in ([0-9.]+)s")


def suite_run(args: argparse.Namespace, folder: Path, parallel: bool) -> dict[str, Any]:
    """One run of the suite: its wall time, pytest's session time, the CPU time of all its
    processes (the xdist workers included) and its verdicts."""
    report = folder / f"{'parallel' if parallel else 'serial'}.json"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--sut", args.sut,
               f"--hypothesis-seed={args.seed}", f"--report-json={report}", f"--db={folder / 'db'}",
               "--progress-every=0", *(["-n", str(args.workers)] if parallel else [])]
    environ = {**os.environ, "MAILCONFORM_PROFILE": args.profile, "PYTHONPATH": str(ROOT)}
    before, started = _cpu(), time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=3600)
    wall, cpu = time.perf_counter() - started, _cpu() - before
    times = _SESSION_TIME.findall(done.stdout.splitlines()[-1] if done.stdout.strip() else "")
    if done.returncode not in (0, 1) or not times or not report.exists():
        sys.exit(f"benchmarks/parallel.py: the suite run failed ({' '.join(command[3:])}):\n"
                 f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    data = json.loads(report.read_text())
    verdicts = {e["id"]: [e["outcome"], e["examples"], e["exercised"],
                          (e["counterexample"] or {}).get("scenario")] for e in data["invariants"]}
    return {"wall": wall, "test": float(times[-1]), "cpu": cpu, "verdicts": verdicts,
            "plays": data["plays"]["played"]}


def _cpu() -> float:
    """CPU seconds used by the finished child processes and, through them, their own children."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (default 3, at least 3)")
    parser.add_argument("--workers", type=int, default=2, help="xdist workers, -n (default 2)")
    parser.add_argument("--profile", default="thorough",
                        help="MAILCONFORM_PROFILE: default (40 examples), ci (60),"
                             " thorough (1000; the default)")
    parser.add_argument("--sut", default="embedded", help="the --sut of both runs (default: embedded)")
    parser.add_argument("--seed", type=int, default=20261202, help="the --hypothesis-seed of both runs")
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds must be at least 3")
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mailconform-bench-") as scratch:
        folder = Path(scratch)
        print(f"warm-up: {args.sut}, profile {args.profile}, serial and -n {args.workers} ...", flush=True)
        suite_run(args, folder, False)
        suite_run(args, folder, True)
        for number in range(1, args.rounds + 1):
            load = os.getloadavg()[0]
            order = (False, True) if number % 2 else (True, False)
            runs = {parallel: suite_run(args, folder, parallel) for parallel in order}
            serial, parallel = runs[False], runs[True]
            rounds.append({"serial": serial, "parallel": parallel, "load": [load, os.getloadavg()[0]],
                           "wall_speedup": serial["wall"] / parallel["wall"],
                           "test_speedup": serial["test"] / parallel["test"],
                           "same_verdicts": serial["verdicts"] == parallel["verdicts"]})
            print(f"round {number}: serial {serial['wall']:.1f} s wall ({serial['test']:.1f} s in pytest),"
                  f" -n {args.workers} {parallel['wall']:.1f} s ({parallel['test']:.1f} s); CPU"
                  f" {serial['cpu']:.1f} s vs {parallel['cpu']:.1f} s:"
                  f" speedup {rounds[-1]['wall_speedup']:.2f}x wall, {rounds[-1]['test_speedup']:.2f}x"
                  f" pytest; same verdicts: {'yes' if rounds[-1]['same_verdicts'] else 'NO'};"
                  f" load average {load:.2f}", flush=True)
    results = {
        "sut": args.sut, "profile": args.profile, "workers": args.workers, "seed": args.seed,
        "cpus": os.cpu_count(),
        "wall_speedup": spread([r["wall_speedup"] for r in rounds]),
        "test_time_speedup": spread([r["test_speedup"] for r in rounds]),
        "serial_wall_s": spread([r["serial"]["wall"] for r in rounds]),
        "parallel_wall_s": spread([r["parallel"]["wall"] for r in rounds]),
        "serial_test_s": spread([r["serial"]["test"] for r in rounds]),
        "parallel_test_s": spread([r["parallel"]["test"] for r in rounds]),
        "serial_cpu_s": spread([r["serial"]["cpu"] for r in rounds]),
        "parallel_cpu_s": spread([r["parallel"]["cpu"] for r in rounds]),
        "load_average": spread([value for r in rounds for value in r["load"]]),
        "same_verdicts": all(r["same_verdicts"] for r in rounds),
        "plays": {"serial": rounds[-1]["serial"]["plays"], "parallel": rounds[-1]["parallel"]["plays"]},
    }
    wall, test, load = results["wall_speedup"], results["test_time_speedup"], results["load_average"]
    print(f"speedup of -n {args.workers} over serial ({args.sut}, profile {args.profile},"
          f" {len(rounds)} rounds, {results['cpus']} CPUs, load average {load['median']:.2f}"
          f" [{load['min']:.2f}-{load['max']:.2f}]):")
    print(f"  wall time     median {wall['median']:.2f}x  min {wall['min']:.2f}x  max {wall['max']:.2f}x")
    print(f"  pytest's time median {test['median']:.2f}x  min {test['min']:.2f}x  max {test['max']:.2f}x")
    print(f"  CPU time of all processes: serial median {results['serial_cpu_s']['median']:.1f} s,"
          f" -n {args.workers} median {results['parallel_cpu_s']['median']:.1f} s")
    print(f"  same verdicts in every round: {'yes' if results['same_verdicts'] else 'NO'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
