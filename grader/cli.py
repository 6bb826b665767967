"""`attn-grade`: a thin click layer over plain functions.

Each command parses its options, calls a plain function (runner.grade...),
hands the Report to a renderer and maps the outcome to an `ExitCode`.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from pathlib import Path

import click

from grader import __version__, registry
from grader.errors import ExitCode, GraderError
from grader.results import Report, Status



def _formats() -> tuple[str, ...]:
    from grader.render import RENDERERS

    return tuple(RENDERERS)


FORMATS = _formats()


def fail(message: str, *, hint: str = "", code: ExitCode = ExitCode.USAGE_ERROR) -> None:
    """The one way the CLI reports a problem: one line (plus a hint), an exit code."""
    click.secho(f"attn-grade: error: {message}", fg="red", err=True)
    if hint:
        click.echo(f"  hint: {hint}", err=True)
    sys.exit(int(code))


def handle_errors(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except GraderError as exc:
            fail(exc.message, hint=exc.hint, code=exc.exit_code)
        except registry.UnknownExercise as exc:
            fail(str(exc.args[0]))
        except KeyboardInterrupt:
            fail("interrupted", code=ExitCode.INTERNAL_ERROR)
        except click.exceptions.Exit:
            raise
        except SystemExit:
            raise
        except Exception:  # noqa: BLE001 - a grader bug: say so, with the traceback
            click.echo(traceback.format_exc(), err=True)
            fail("internal error in attn-grade (a bug: please report it with the traceback above)",
                 code=ExitCode.INTERNAL_ERROR)
    return wrapper


def grading_options(func):
    """Options shared by every command that grades."""
    options = [
        click.option("--submission", "-s", default="exercises", show_default=True,
                     type=click.Path(path_type=Path),
                     help="Folder of exercise files or a notebook (instructors: solutions)."),
        click.option("--seed", type=int, default=None,
                     help="Hypothesis seed; printed with every run so a failure reproduces."),
        click.option("--format", "fmt", type=click.Choice(FORMATS), default="rich", show_default=True,
                     help="How to show the results (json: stdout holds the JSON alone)."),
        click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
                     help="Write the rendered results to this file instead of stdout."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                     show_default=True, help="Where student code runs."),
        click.option("--no-train", is_flag=True, help="Skip the timed training check (shown as not run)."),
        click.option("--amp", type=click.Choice(["off", "bf16", "fp16"]), default=None,
                     help="Training check precision [default: fp16 on cuda, off on cpu]."),
        click.option("--max-examples", type=int, default=None,
                     help="Hypothesis examples per property (default: each test's own)."),
        click.option("--fail-under", type=click.FloatRange(min=0), default=None, metavar="POINTS",
                     help="Exit 1 only when the total is below POINTS (default: unless all pass)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def resolve_device(device: str) -> str:
    if device == "cpu":
        return "cpu"
    import torch

    if device == "cuda":
        if not torch.cuda.is_available():
            raise GraderError("--device cuda, but no CUDA GPU is available here",
                              hint="use --device cpu (or auto)")
        return "cuda"
    return "cuda" if torch.cuda.is_available() else "cpu"


def run_grading(keys: list[str] | None, *, submission: Path, seed, fmt: str, output, device: str,
                no_train: bool, max_examples, fail_under: float | None = None,
                amp: str | None = None) -> None:
    exercises = [registry.get(k) for k in keys] if keys else list(registry.EXERCISES)
    if not submission.exists():
        raise GraderError(f"submission not found: {submission}",
                          hint="pass --submission PATH (a folder of exercise files or a notebook)")
    # Workers import torch while this process imports torch, pytest and hypothesis.
    from grader.sandbox import spawn

    spawn.prewarm(warm=any(ex.warm_start for ex in exercises))

    from grader import render, runner
    options = runner.GradingOptions(seed=seed, device=resolve_device(device), train=not no_train,
                                    max_examples=max_examples, amp=amp)
    with progress_display(enabled=fmt == "rich" and output is None) as progress:
        report = runner.grade(submission, exercises, options, progress=progress)
    render.emit(report, fmt, output)
    finish(exit_code(report, fail_under))


def finish(code: ExitCode) -> None:
    """Exit now: stop the zygote and flush, then skip the interpreter's slow
    teardown of torch (~0.5 s a student would wait for nothing)."""
    from grader.sandbox import spawn

    spawn.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    if not _FAST_EXIT:
        sys.exit(int(code))  # in-process callers (tests, notebooks) need a normal exit
    os._exit(int(code))


_FAST_EXIT = False


def run() -> None:
    """The `attn-grade` console script: `main`, exiting without teardown."""
    global _FAST_EXIT
    _FAST_EXIT = True
    main()


def exit_code(report: Report, fail_under: float | None = None) -> ExitCode:
    """SOME_FAILED unless every exercise passed; with `fail_under`, only when
    the total is below that many points."""
    if fail_under is not None:
        return ExitCode.SOME_FAILED if report.total < fail_under - 1e-6 else ExitCode.ALL_PASSED
    return ExitCode.ALL_PASSED if report.all_passed else ExitCode.SOME_FAILED


class progress_display:
    """A live progress line on stderr while tests run."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.progress = None
        self.task = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), console=Console(stderr=True), transient=True)
        self.progress.__enter__()
        return self.update

    def update(self, event: str, exercise=None, **info) -> None:
        p = self.progress
        if event == "exercise_start":
            self.task = p.add_task(f"exercise {exercise.number} · {exercise.slug}", total=None)
        elif event == "collected" and self.task is not None:
            p.update(self.task, total=info["count"])
        elif event == "test" and self.task is not None:
            p.advance(self.task)
            status = info["status"]
            if status is not Status.PASSED:
                p.update(self.task, description=f"exercise {exercise.number} · {exercise.slug} "
                                                f"({info['name']}: {status.value})")
        elif event == "exercise_done" and self.task is not None:
            p.remove_task(self.task)
            self.task = None

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.__exit__(*exc)
        return False


# ---------------------------------------------------------------------- commands
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="attn-grade")
def main() -> None:
    """attn-grade: grade the attention & Transformer exercises.

    \b
    Exit codes: 0 all passed, 1 some exercise lost points,
                2 bad usage or input, 3 internal error.
    """


@main.command("list")
@handle_errors
def list_exercises() -> None:
    """List the exercises, their files and points."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="attn-grade exercises")
    for column in ("#", "slug", "title", "file", "points", "depends on"):
        table.add_column(column)
    for ex in registry.EXERCISES:
        table.add_row(str(ex.number), ex.slug, ex.title, ex.file, f"{ex.points:g}",
                      ", ".join(map(str, ex.depends_on)) or "-")
    Console().print(table)


@main.command("exercise")
@click.argument("keys", nargs=-1, required=True)
@grading_options
@handle_errors
def exercise(keys, **options) -> None:
    """Grade exercise(s) KEYS: a number (3) or a slug (cross-attention)."""
    run_grading(list(keys), **options)


@main.command("all")
@grading_options
@handle_errors
def all_exercises(**options) -> None:
    """Grade every exercise."""
    run_grading(None, **options)


# ---------------------------------------------------------------------- more commands
# Commands that live in their own modules register here, one line each.
from grader.authoring.commands import generate_command  # noqa: E402
main.add_command(generate_command)
from grader.batch import batch_command, merge_command  # noqa: E402
main.add_command(batch_command)
main.add_command(merge_command)
from grader.verify import verify_command  # noqa: E402
main.add_command(verify_command)
from grader.ci import render_command  # noqa: E402
main.add_command(render_command)
from grader.export import export_student_command  # noqa: E402
main.add_command(export_student_command)


if __name__ == "__main__":  # pragma: no cover
    run()
