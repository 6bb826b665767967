"""`attn-grade verify`: the test bank's self-check (a thin layer over grader/verify.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from grader import course, registry
from grader import verify as verification
from grader.commands.options import use
from grader.errors import ExitCode, GraderError, handle_errors
from grader.sandbox import isolation


@click.command("verify")
@click.option("--solutions", default="solutions", show_default=True, type=click.Path(path_type=Path),
              help="The reference solutions: they must get full marks.")
@click.option("--mutants", "mutants_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of exNN/{correct,wrong,hostile}_* fixtures [default: tests/fixtures].")
@click.option("--no-mutants", is_flag=True, help="Only check the solutions and the stubs.")
@click.option("--exercises", "-e", "exercise_keys", multiple=True,
              help="Exercises to verify (1,2 or repeated); default: all with hidden tests.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Judge processes grading in parallel.")
@click.option("--seeds", type=click.IntRange(1, 20), default=1, show_default=True,
              help="Grade every mutant with this many seeds (seed, seed+1, ...): each must get "
                   "the same points.")
@use("seed", "no_train", "max_examples", "allow_weak_isolation")
@handle_errors
def verify_command(solutions: Path, mutants_dir, no_mutants: bool, exercise_keys, jobs: int,
                   seeds: int, seed: int | None, no_train: bool, max_examples,
                   allow_weak_isolation: bool) -> None:
    """Self-check the test bank: solutions full marks, stubs zero, mutants caught."""
    isolation.require_isolation(isolation.UID, allow_weak_isolation)   # fixtures are hostile too
    keys = [k for v in exercise_keys for k in v.replace(",", " ").split()]
    exercises = [registry.get(k) for k in keys] if keys else list(registry.EXERCISES)
    folder = None if no_mutants else (mutants_dir or verification.default_mutants())
    if folder is not None and not folder.is_dir():
        raise GraderError(f"no mutants folder at {folder}", hint="pass --mutants DIR or --no-mutants")
    err = Console(stderr=True)
    state = {"done": 0, "total": 0}

    def progress(event: str, **info) -> None:
        if event == "start":
            state["total"] = info["total"]
            err.print(f"verifying: {info['total']} gradings on {jobs} judge process(es)...",
                      style="dim", highlight=False)
        elif event == "done_one" and err.is_terminal:
            state["done"] += 1
            err.print(f"  [{state['done']}/{state['total']}] {info['label']}", style="dim",
                      highlight=False)

    result = verification.verify(solutions, folder, exercises, jobs=jobs,
                    seed=course.course_seed() if seed is None else seed,
                    max_examples=max_examples, progress=progress, seeds=seeds, train=not no_train)
    verification.print_result(result)
    sys.exit(int(ExitCode.ALL_PASSED if result.ok else ExitCode.SOME_FAILED))
