"""`attn-grade exercise N...` and `attn-grade all`: grade, show, exit."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from grader import course, registry, render
from grader.commands.options import grading_options
from grader.commands.progress import ProgressDisplay
from grader.devices import resolve_device
from grader.errors import ExitCode, handle_errors
from grader.results import Report
from grader.sandbox import spawn


def run_grading(keys: list[str] | None, *, submission: Path, seed, fmt: str, output, device: str,
                no_train: bool, max_examples, fail_under: float | None = None,
                amp: str | None = None, details: bool = False,
                dependencies: str = "reference", course_seed: bool = False) -> None:
    exercises = [registry.get(k) for k in keys] if keys else list(registry.EXERCISES)
    # Start the zygote first: it imports torch while this process imports
    # torch, pytest and hypothesis through the runner (seconds, overlapped).
    spawn.prewarm(warm=any(ex.warm_start for ex in exercises))
    from grader import runner  # noqa: PLC0415 - after prewarm, for the overlap above
    from grader.submission import Submission, resolve_path  # noqa: PLC0415 - likewise

    submission = resolve_path(submission)   # from inside exercises/: the current folder
    Submission.from_path(submission).require_exercise_files()  # a mistyped folder: exit 2

    runner.become_judge_process()
    if course_seed and seed is None:
        seed = course.course_seed()
    options = runner.GradingOptions(seed=seed, device=resolve_device(device), train=not no_train,
                                    max_examples=max_examples, amp=amp, dependencies=dependencies)
    with ProgressDisplay(enabled=fmt == "rich" and output is None) as progress:
        report = runner.grade(submission, exercises, options, progress=progress)
    render.emit(report, fmt, output, details=details)
    finish(exit_code(report, fail_under))


def exit_code(report: Report, fail_under: float | None = None) -> ExitCode:
    """SOME_FAILED unless every exercise passed; with `fail_under`, only when
    the total is below that many points."""
    if fail_under is not None:
        return ExitCode.SOME_FAILED if report.total < fail_under - 1e-6 else ExitCode.ALL_PASSED
    return ExitCode.ALL_PASSED if report.all_passed else ExitCode.SOME_FAILED


# Set by the console script: exit without the interpreter's slow teardown of
# torch.  In-process callers (tests, notebooks) keep a normal exit.
FAST_EXIT = False


def finish(code: ExitCode) -> None:
    """Exit now: stop the zygote and flush, then skip the interpreter's slow
    teardown of torch (~0.5 s a student would wait for nothing)."""
    spawn.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    if not FAST_EXIT:
        sys.exit(int(code))
    os._exit(int(code))


@click.command("exercise")
@click.argument("keys", nargs=-1, required=True)
@grading_options
@handle_errors
def exercise_command(keys, **options) -> None:
    """Grade exercise(s) KEYS: a number (3) or a slug (cross-attention)."""
    run_grading(list(keys), **options)


@click.command("all")
@grading_options
@handle_errors
def all_command(**options) -> None:
    """Grade every exercise."""
    run_grading(None, **options)
