"""`attn-grade watch [N]`: regrade exercise N (default: the one whose file
changed) every time a file of the submission is saved; Ctrl-C to stop."""

from __future__ import annotations

from dataclasses import replace

import click

from grader import registry
from grader.commands.grading import finish
from grader.devices import resolve_device
from grader.commands.options import use
from grader.errors import ExitCode, handle_errors


def _printer(console, seed: int):
    from grader.render.rich import print_report
    from grader.watch import QUICK_EXAMPLES

    def say(text: str, style: str = "dim") -> None:
        console.print(text, style=style, markup=False, highlight=False)

    def show(event) -> None:
        console.clear()
        what = f" ({', '.join(event.changed)} changed)" if event.changed else ""
        if event.quick:
            say(f"quick check ({QUICK_EXAMPLES} examples per property): the full check is running",
                "yellow")
        if event.report is not None:
            print_report(event.report, console)
        else:
            say(f"attn-grade: {event.error}", "red")
        if event.quick:
            say(f"quick check of exercise {event.exercise.number}{what} · seed {seed} · "
                "full check running…")
        else:
            say(f"watching exercise {event.exercise.number}{what} · seed {seed} · "
                "save a file to regrade, Ctrl-C to stop")
    return show


@click.command("watch")
@click.argument("key", required=False)
@use("submission", "seed", "device", "max_examples")
@handle_errors
def watch_command(key, submission, seed, device, max_examples) -> None:
    """Regrade exercise KEY (default: the one whose file changed) on every save.

    Each save gets a quick check first (a few examples per property, marked as
    such), then the full one; Ctrl-C stops."""
    from rich.console import Console

    from grader.sandbox import spawn
    from grader.submission import Submission, resolve_path

    exercise = registry.get(key) if key else None
    Submission.from_path(resolve_path(submission)).require_exercise_files()  # mistyped: exit 2
    spawn.prewarm(warm=bool(exercise and exercise.warm_start))
    from grader import runner  # noqa: PLC0415 - after prewarm (see commands/grading.py)
    from grader.watch import QUICK_EXAMPLES, CtrlC, watch  # noqa: PLC0415 - likewise

    runner.become_judge_process()
    options = runner.GradingOptions(seed=seed, device=resolve_device(device), train=False,
                                    max_examples=max_examples)
    options.resolved_seed()
    quick = replace(options, max_examples=QUICK_EXAMPLES, own_stack=False)
    console = Console()
    if exercise is None:
        console.print(f"watching {submission}: save an exercise file to grade it, Ctrl-C to stop",
                      style="dim", markup=False, highlight=False)
    with CtrlC() as ctrl_c:
        watch(submission, exercise, lambda folder, ex, fast: runner.grade(folder, [ex], quick if fast else options),
              _printer(console, options.seed), quick=not max_examples or max_examples > QUICK_EXAMPLES,
              stopped=lambda: ctrl_c.pressed)
    finish(ExitCode.ALL_PASSED)      # stops the zygote: no process is left behind
