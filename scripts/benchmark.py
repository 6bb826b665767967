#!/usr/bin/env python3
"""How long a student waits: median wall time of `attn-grade exercise N`.

Runs each command several times in fresh processes (as a student would) and
prints the median next to `python -c "import torch"` on the same machine,
the floor no grading run can go below.

    python scripts/benchmark.py                     # exercises 1 and 2, 5 runs each
    python scripts/benchmark.py --repeat 3 --case "all:all"
    python scripts/benchmark.py --training          # the timed training check, for real

The tests never time anything: the training check's verdict logic is tested
with an injected clock and budget. `--training` is where its real figures
come from: the budget calibrated on this machine, and how the reference
solution and a correct-but-slow loop (tests/fixtures/ex08/) fare against it.

    python scripts/benchmark.py --watch             # `attn-grade watch`: save -> new scorecard

    python scripts/benchmark.py --batch 24 --jobs 2     # class throughput (submissions/min)

`--batch N` grades a class of N submissions (copies of solutions/ and of
the stubs, each made distinct so nothing comes from the cache) with
`attn-grade batch --jobs J`, once without and once with the training check,
and prints the submissions per minute the command reports.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
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


def training_check(repeat: int) -> None:
    """The timed training check with its calibrated budget (no injection)."""
    import shutil
    import tempfile

    sys.path.insert(0, str(REPO))
    from grader import registry, runner

    slow = Path(tempfile.mkdtemp(prefix="attn-grade-bench-"))
    for py in (REPO / "solutions").glob("*.py"):
        shutil.copy(py, slow / py.name)
    shutil.copy(REPO / "tests/fixtures/ex08/slow_loop_over_the_batch.py", slow / "ex08_training.py")
    print(f"{'submission':28} {'passed':>6} {'accuracy':>8} {'steps':>5} {'train s':>7} "
          f"{'budget s':>8} {'s/ref step':>10}")
    try:
        for label, folder in (("solutions", REPO / "solutions"), ("slow loop (fixture)", slow)):
            for seed in range(1, repeat + 1):
                report = runner.grade(folder, [registry.get(8)], runner.GradingOptions(
                    seed=seed, device="cpu", train=True))
                t = report.exercises[0].extra.get("training", {})
                print(f"{label + f' seed {seed}':28} {str(t.get('passed')):>6} "
                      f"{t.get('accuracy', 0):8.1%} {t.get('steps', 0):5d} {t.get('time_s', 0):7.1f} "
                      f"{t.get('budget_s', 0):8.1f} {t.get('seconds_per_reference_step', 0):10.4f}")
    finally:
        shutil.rmtree(slow, ignore_errors=True)


def make_class(folder: Path, count: int) -> Path:
    """`count` students: solutions and stubs in turn, each with its own comment."""
    subs = folder / "submissions"
    for index in range(count):
        source = REPO / ("solutions" if index % 2 == 0 else "exercises")
        student = subs / f"student{index:03d}"
        student.mkdir(parents=True)
        for py in source.glob("*.py"):
            (student / py.name).write_text(py.read_text() + f"\n# student {index}\n")
    return subs


def batch_throughput(count: int, jobs: int, exercises: str | None) -> list[tuple[str, float, float]]:
    """(label, submissions per minute, wall seconds) without and with the training check."""
    rows = []
    for label, extra in (("batch --no-train", ["--no-train"]), ("batch (training check)", [])):
        with tempfile.TemporaryDirectory(prefix="attn-grade-bench-") as tmp:
            subs = make_class(Path(tmp), count)
            cmd = [sys.executable, "-m", "grader.cli", "batch", str(subs), "--jobs", str(jobs),
                   "--output", str(Path(tmp) / "out" / "grades.csv"), "--cache-dir",
                   str(Path(tmp) / "cache"), "--seed", "1", *extra]
            if exercises:
                cmd += ["--exercises", exercises]
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
            wall = time.perf_counter() - start
            found = re.search(r"([0-9.]+) submissions/min", proc.stderr)
            if proc.returncode not in (0, 1) or not found:
                sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
            rows.append((label, float(found.group(1)), wall))
    return rows


# What a student saves in turn while `--watch` measures: the finished file and
# a typical bug (so both a passing and a failing scorecard are timed).
WATCH_SAVES = {
    1: ("solutions/ex01_attention.py", "tests/fixtures/ex01/wrong_softmax_dim.py"),
    2: ("solutions/ex02_masks.py", "tests/fixtures/ex02/wrong_mask_inverted.py"),
}


def watch_latency(numbers: list[int], repeat: int) -> None:
    """`attn-grade watch N`, the real command in its own process: seconds
    from a file's save to the quick scorecard and to the full one, read from
    its output as a student would see it.  The saves alternate between a
    correct and a wrong version of the exercise, at random moments of the poll."""
    import os
    import queue
    import random
    import shutil
    import signal
    import threading

    print(f"{'attn-grade watch N, save ->':36} {'quick median':>12} {'max':>6} {'full median':>12} "
          f"{'max':>6}  (s, n={repeat} saves)")
    for number in numbers:
        with tempfile.TemporaryDirectory(prefix="attn-grade-watch-") as tmp:
            folder = Path(tmp)
            for py in (REPO / "exercises").glob("*.py"):
                shutil.copy(py, folder / py.name)
            target = folder / Path(WATCH_SAVES[number][0]).name
            shutil.copy(REPO / WATCH_SAVES[number][0], target)
            proc = subprocess.Popen(
                [sys.executable, "-m", "grader.cli", "watch", str(number), "--submission", str(folder),
                 "--seed", "1"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "100"})
            lines: queue.Queue = queue.Queue()
            threading.Thread(target=lambda: [lines.put((time.perf_counter(), ln)) for ln in proc.stdout],
                             daemon=True).start()

            def wait_for(marker: str) -> float:
                while True:
                    at, line = lines.get(timeout=120)
                    if marker in line:
                        return at

            wait_for("watching exercise")                       # the first full scorecard
            quick, full = [], []
            for index in range(repeat):
                time.sleep(random.uniform(0.3, 0.6))             # any moment of the poll
                source = REPO / WATCH_SAVES[number][index % 2]
                text = source.read_text() + f"\n# save {index}\n"
                saved = time.perf_counter()
                target.write_text(text)
                quick.append(wait_for("quick check of exercise") - saved)
                full.append(wait_for("watching exercise") - saved)
            print("  quick", " ".join(f"{q:.2f}" for q in quick), " full", " ".join(f"{f:.2f}" for f in full))
            proc.send_signal(signal.SIGINT)                      # Ctrl-C
            code = proc.wait(timeout=30)
        print(f"{'exercise ' + str(number):36} {statistics.median(quick):12.2f} {max(quick):6.2f} "
              f"{statistics.median(full):12.2f} {max(full):6.2f}  (exit {code})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--submission", default="solutions")
    parser.add_argument("--case", action="append", default=None,
                        help="label:args, e.g. 'ex1:exercise 1' (default: exercises 1, 2 and 1+2)")
    parser.add_argument("--training", action="store_true",
                        help="time the training check (solutions and a slow loop) instead")
    parser.add_argument("--batch", type=int, default=0, metavar="N",
                        help="measure class throughput on N submissions instead")
    parser.add_argument("--jobs", type=int, default=2, help="judges for --batch")
    parser.add_argument("--exercises", default=None, help="exercises for --batch (default: all)")
    parser.add_argument("--watch", action="store_true", help="time a warm regrade (attn-grade watch)")
    args = parser.parse_args()
    if args.training:
        training_check(args.repeat)
        return
    if args.batch:
        print(f"{'class of ' + str(args.batch) + ', --jobs ' + str(args.jobs):44} {'subs/min':>9} {'wall s':>7}")
        for label, rate, wall in batch_throughput(args.batch, args.jobs, args.exercises):
            print(f"{label:44} {rate:9.1f} {wall:7.1f}")
        return
    if args.watch:
        watch_latency([1, 2], args.repeat)
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
