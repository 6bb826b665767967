#!/usr/bin/env python3
"""How long a student waits: median wall time of `attn-grade exercise N`.

Runs each command several times in fresh processes (as a student would) and
prints the median next to `python -c "import torch"` on the same machine,
the floor no grading run can go below.

    python scripts/benchmark.py                     # exercises 1 and 2, 5 runs each
    python scripts/benchmark.py --repeat 3 --case "all:all"
    python scripts/benchmark.py --watch             # `attn-grade watch`: save -> new scorecard
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def watch_latency(submission: str, numbers: list[int], repeat: int) -> None:
    """`attn-grade watch N`: seconds from a save to the new scorecard, in one
    warm judge process (the first grading, which starts the zygote, is not
    counted): the settle poll, the grading and drawing the scorecard."""
    import io

    from rich.console import Console

    from grader import registry, runner
    from grader.render.rich import print_report
    from grader.sandbox import spawn
    from grader.watch import POLL_SECONDS

    spawn.prewarm()
    options = runner.GradingOptions(seed=1, train=False)
    print(f"{'attn-grade watch N (warm)':44} {'median s':>9} {'min s':>7}  (n={repeat}; "
          f"+ up to {POLL_SECONDS:.1f} s until the poll sees the save, + {POLL_SECONDS:.1f} s settle)")
    for number in numbers:
        exercise = registry.get(number)
        runner.grade(Path(submission), [exercise], options)        # warm-up: zygote, imports
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            report = runner.grade(Path(submission), [exercise], options)
            print_report(report, Console(file=io.StringIO()))
            times.append(time.perf_counter() - start)
        print(f"{'regrade exercise ' + str(number):44} {statistics.median(times):9.2f} {min(times):7.2f}")
    spawn.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--submission", default="solutions")
    parser.add_argument("--case", action="append", default=None,
                        help="label:args, e.g. 'ex1:exercise 1' (default: exercises 1, 2 and 1+2)")
    parser.add_argument("--watch", action="store_true", help="time a warm regrade (attn-grade watch)")
    args = parser.parse_args()
    if args.watch:
        sys.path.insert(0, str(REPO))
        watch_latency(args.submission, [1, 2], args.repeat)
        return
    cases = args.case or ["exercise 1:exercise 1", "exercise 2:exercise 2", "exercises 1+2:exercise 1 2"]
    python = sys.executable
    grade = [python, "-m", "grader.cli"]

    rows = []
    torch_times = [timed([python, "-c", "import torch"])[0] for _ in range(args.repeat)]
    rows.append(("python -c 'import torch'", statistics.median(torch_times), min(torch_times), ""))
    for case in cases:
        label, _, rest = case.partition(":")
        cmd = grade + rest.split() + ["--submission", args.submission, "--format", "json", "--seed", "1",
                                      "--no-train"]
        times, points = [], ""
        for _ in range(args.repeat):
            elapsed, out = timed(cmd)
            times.append(elapsed)
            report = json.loads(out)
            points = f"{report['total']:g}/{report['max_total']:g}"
        rows.append((f"attn-grade {rest}", statistics.median(times), min(times), points))

    print(f"{'command':44} {'median s':>9} {'min s':>7}  points   (n={args.repeat})")
    for name, median, best, points in rows:
        print(f"{name:44} {median:9.2f} {best:7.2f}  {points}")


if __name__ == "__main__":
    main()
