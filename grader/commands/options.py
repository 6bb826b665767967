"""The grading options, each declared once with its help.

Every command that grades (`exercise`, `all`, `batch`, `verify`) takes its
options from here: `use(...)` picks which ones a command offers and, where a
command grades for the record rather than for a student, another default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from grader.devices import DEVICES
from grader.dependencies import MODES as DEPENDENCY_MODES
from grader.render import RENDERERS

FORMATS: tuple[str, ...] = tuple(RENDERERS)


def _declare(*names: str, **attrs: Any) -> Callable[..., Callable]:
    def make(**overrides: Any) -> Callable:
        return click.option(*names, **{**attrs, **overrides})
    return make


OPTIONS: dict[str, Callable[..., Callable]] = {
    "submission": _declare(
        "--submission", "-s", default="exercises", show_default=True, type=click.Path(path_type=Path),
        help="Folder of exercise files or a notebook (instructors: solutions)."),
    "seed": _declare(
        "--seed", type=click.IntRange(0, 2**63 - 1), default=None,
        help="Hypothesis seed, printed in every report so a run reproduces [default: a fresh one "
             "for exercise/all; the course seed (grader/course.py) for batch and verify]."),
    "format": _declare(
        "--format", "fmt", type=click.Choice(FORMATS), default="rich", show_default=True,
        help="How to show the results (json: stdout holds the JSON alone)."),
    "output": _declare(
        "--output", "-o", type=click.Path(path_type=Path), default=None,
        help="Write the rendered results to this file instead of stdout."),
    "device": _declare(
        "--device", type=click.Choice(DEVICES), default="auto", show_default=True,
        help="Where student code runs."),
    "no_train": _declare(
        "--no-train", is_flag=True, help="Skip the timed training check (shown as not run)."),
    "amp": _declare(
        "--amp", type=click.Choice(["off", "bf16", "fp16"]), default=None,
        help="Training check precision [default: fp16 on cuda, off on cpu]."),
    "max_examples": _declare(
        "--max-examples", type=click.IntRange(min=1), default=None,
        help="Hypothesis examples per property (default: each test's own)."),
    "details": _declare(
        "--details", is_flag=True,
        help="Show every failure in full (default: one likely cause said once per exercise; the "
             "JSON always has everything)."),
    "dependencies": _declare(
        "--dependencies", type=click.Choice(DEPENDENCY_MODES), default=DEPENDENCY_MODES[0],
        show_default=True,
        help="What an exercise runs on: the grader's reference of the earlier exercises it "
             "imports (a bug costs points once, where it is) or your own files end to end "
             "(reported, like everything else)."),
    "course_seed": _declare(
        "--course-seed", is_flag=True,
        help="Grade with the course seed (grader/course.py: ATTN_GRADE_COURSE_SEED or the public "
             "default), the same inputs as batch, verify and the Gradescope autograder."),
    "allow_weak_isolation": _declare(
        "--allow-weak-isolation", is_flag=True, envvar="ATTN_GRADE_ALLOW_WEAK_ISOLATION",
        help="Grade other people's code even where workers cannot be isolated at the `uid` level "
             "or better (see attn-grade doctor).  [env: ATTN_GRADE_ALLOW_WEAK_ISOLATION]"),
    "fail_under": _declare(
        "--fail-under", type=click.FloatRange(min=0), default=None, metavar="POINTS",
        help="Exit 1 only when the total is below POINTS (default: unless all pass)."),
}

# What `exercise` and `all` offer, in --help order.
GRADING = ("submission", "seed", "format", "output", "device", "no_train", "amp", "max_examples",
           "dependencies", "details", "course_seed", "fail_under")


def use(*names: str, **defaults: Any) -> Callable[[Callable], Callable]:
    """Decorate a command with the named options; `defaults` overrides a default
    (`use("seed", seed=COURSE_SEED)`)."""
    unknown = (set(names) | set(defaults)) - set(OPTIONS)
    if unknown:
        raise KeyError(f"no grading option {sorted(unknown)}")

    def decorate(func: Callable) -> Callable:
        for name in reversed(names):
            overrides = {"default": defaults[name], "show_default": True} if name in defaults else {}
            func = OPTIONS[name](**overrides)(func)
        return func
    return decorate


grading_options = use(*GRADING)
