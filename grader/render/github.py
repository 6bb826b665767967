"""GitHub Actions annotations: `::error file=...,line=...::` workflow commands.

Printed by a step of the grading workflow, they put each problem on the
student's own file in the pull request's diff: at the failing line where a
traceback (or a syntax error) gives one, otherwise on the exercise's file.

Paths: tracebacks name files relative to the submission folder
(`ex03_cross_attention.py`); the report records that folder as it was given
on the command line (`--submission exercises`), so the annotation's path is
`exercises/ex03_cross_attention.py`, relative to the repository root where
the workflow runs.

Everything from a submission is escaped as the Actions runner expects
(`%`, CR, LF in the message; also `:` and `,` in properties; see
grader/render/sanitize.py), so a message cannot end the command and start
another one. GitHub shows at most 10
error annotations per step: located ones come first, then a notice says how
many more there are.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from grader import registry
from grader.render.plain import failure_text
from grader.render.sanitize import gh_data, gh_property
from grader.render.options import DEFAULT, RenderOptions
from grader.results import ExerciseResult, Report, Status, TestResult

MAX_ERRORS = 10
MAX_MESSAGE = 1000
QUIET = {Status.PASSED, Status.NOT_IMPLEMENTED, Status.NOT_RUN}

_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+)', re.M)
_SYNTAX = re.compile(r"syntax error in (.+?\.py), line (\d+)")


escape_data = gh_data
escape_property = gh_property


@dataclass
class Annotation:
    file: str
    line: int | None
    title: str
    message: str
    others: int = 0                      # more tests failing at the same place

    def command(self) -> str:
        props = [f"file={escape_property(self.file)}"]
        if self.line:
            props.append(f"line={self.line}")
        title = self.title + (f" (and {self.others} more tests)" if self.others else "")
        props.append(f"title={escape_property(title)}")
        return f"::error {','.join(props)}::{escape_data(self.message)}"


def submission_folder(submission: str) -> str:
    path = submission.replace("\\", "/")
    if path.endswith((".py", ".ipynb")):
        path = posixpath.dirname(path)
    path = posixpath.normpath(path) if path else "."
    return "" if path == "." else path


def _join(base: str, name: str) -> str:
    return posixpath.normpath(posixpath.join(base, name)) if base else posixpath.normpath(name)


def location(base: str, test: TestResult) -> tuple[str, int] | None:
    """The student's file and line where this test went wrong, if known."""
    frames = [(f, int(n)) for f, n in _FRAME.findall(test.traceback)
              if f.endswith(".py") and not posixpath.isabs(f) and not f.startswith("..")]
    if frames:
        name, line = frames[-1]          # the innermost frame in the student's files
        return _join(base, name), line
    found = _SYNTAX.search(test.message)
    if found:
        return posixpath.normpath(found.group(1).replace("\\", "/")), int(found.group(2))
    return None


def _text(ex: ExerciseResult, test: TestResult) -> str:
    return failure_text(test, compact=True, limit=MAX_MESSAGE)


def annotations(report: Report) -> list[Annotation]:
    base = submission_folder(report.submission)
    located: dict[tuple[str, int, str], Annotation] = {}
    loose: list[Annotation] = []
    for ex in report.exercises:
        exercise_file = _join(base, registry.get(ex.number).file)
        for test in ex.tests:
            if test.status in QUIET:
                continue
            title = f"attn-grade · exercise {ex.number} › {test.name}"
            where = location(base, test)
            message = _text(ex, test)
            if where is None:
                loose.append(Annotation(exercise_file, None, title, message))
                continue
            key = (where[0], where[1], message)
            if key in located:           # one line failing many tests: one annotation
                located[key].others += 1
            else:
                located[key] = Annotation(where[0], where[1], title, message)
    return list(located.values()) + loose


def notes(report: Report) -> list[str]:
    """One notice per exercise note (e.g. how it fares on the student's own
    earlier files: not scored), on the exercise's file."""
    base = submission_folder(report.submission)
    return [f"::notice file={escape_property(_join(base, registry.get(ex.number).file))},"
            f"title={escape_property(f'attn-grade · exercise {ex.number} (note)')}::"
            f"{escape_data(note)}" for ex in report.exercises for note in ex.notes]


def render(report: Report, options: RenderOptions = DEFAULT) -> str:
    found = annotations(report)
    lines = [a.command() for a in found[:MAX_ERRORS]] + notes(report)
    if len(found) > MAX_ERRORS:
        lines.append(f"::notice title=attn-grade::{len(found) - MAX_ERRORS} more problems are not "
                     "annotated: see the scorecard in the job summary")
    return "".join(line + "\n" for line in lines)
