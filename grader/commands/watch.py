"""`attn-grade watch [N]`: regrade exercise N (default: the one whose file
changed) every time a file of the submission is saved; Ctrl-C to stop."""

from __future__ import annotations


import click

from grader import registry
from grader.commands.grading import finish
from grader.devices import resolve_device
from grader.commands.options import use
from grader.errors import ExitCode, handle_errors


def _printer(console, seed: int):
    from grader.render.rich import print_report

    def show(event) -> None:
        console.clear()
        what = f" ({', '.join(event.changed)} changed)" if event.changed else ""
        if event.report is not None:
            print_report(event.report, console)
        else:
            console.print(f"attn-grade: {event.error}", style="red", markup=False, highlight=False)
        console.print(f"watching exercise {event.exercise.number}{what} · seed {seed} · "
                      "save a file to regrade, Ctrl-C to stop", style="dim", markup=False, highlight=False)
    return show


@click.command("watch")
@click.argument("key", required=False)
@use("submission", "seed", "device", "max_examples")
@handle_errors
def watch_command(key, submission, seed, device, max_examples) -> None:
    """Regrade exercise KEY (default: the one whose file changed) on every save."""
    from rich.console import Console

    from grader import runner
    from grader.sandbox import spawn
    from grader.watch import watch

    exercise = registry.get(key) if key else None
    spawn.prewarm(warm=bool(exercise and exercise.warm_start))
    options = runner.GradingOptions(seed=seed, device=resolve_device(device), train=False,
                                    max_examples=max_examples)
    options.resolved_seed()
    console = Console()
    if exercise is None:
        console.print(f"watching {submission}: save an exercise file to grade it, Ctrl-C to stop",
                      style="dim", markup=False, highlight=False)
    watch(submission, exercise, lambda folder, ex: runner.grade(folder, [ex], options),
          _printer(console, options.seed))
    finish(ExitCode.ALL_PASSED)      # stops the zygote: no process is left behind
