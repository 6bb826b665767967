"""The report as Gradescope's autograder `results.json`.

Gradescope's autograder specification: a JSON object with a top-level
`score` (which overrides the sum of the tests' scores), `execution_time`
(seconds), `output` (text shown to the student for the whole submission) and
`tests`, each with `name`, `number`, `score`, `max_score`, `status`
("passed" or "failed"), `output` and `visibility` ("hidden",
"after_due_date", "after_published" or "visible").

One Gradescope test per hidden test, numbered "exercise.test" (3.1, 3.2 ...)
so Gradescope groups them by exercise; the scores are the same points as
every other view (the test scores add up to the top-level score).
autograder/run_autograder writes this file to /autograder/results/results.json.
"""

from __future__ import annotations

import json

from grader.render.junit import tests_of
from grader.render.plain import failure_parts
from grader.render.points import points_text
from grader.render.sanitize import clean
from grader.render.options import DEFAULT, RenderOptions
from grader.results import ExerciseResult, Report, Status, TestResult
from grader.sandbox import isolation

VISIBILITY = "visible"         # students see every test's name, score and output
STATUS_LABEL = {
    Status.PASSED: "passed",
    Status.FAILED: "failed: wrong values",
    Status.ERROR: "error: your code raised an exception",
    Status.NOT_IMPLEMENTED: "not implemented yet",
    Status.TIMEOUT: "timeout: a call did not finish in time",
    Status.CRASHED: "crashed: the process running your code died",
    Status.FORBIDDEN: "forbidden: calls a built-in the exercise asks you to write",
    Status.NOT_RUN: "not run",
}
MAX_OUTPUT_CHARS = 4000


def _score(value: float) -> float:
    return round(float(value), 4)


def test_output(ex: ExerciseResult, test: TestResult) -> str:
    text = "\n\n".join([STATUS_LABEL[test.status], *failure_parts(test)])
    return text if len(text) <= MAX_OUTPUT_CHARS else text[:MAX_OUTPUT_CHARS] + "…"


def summary(report: Report) -> str:
    version = f" {report.grader_version}" if report.grader_version else ""
    lines = [f"attn-grade{version} · seed {report.seed} (reproduce with "
             f"--seed {report.seed}) · device {report.device}", *filter(None, [isolation.describe(report.sandbox)]),
             f"total: {points_text(report.total)}/{points_text(report.max_total)} points", ""]
    for ex in report.exercises:
        lines.append(f"{ex.number} · {ex.slug}: {points_text(ex.points)}/{points_text(ex.max_points)} "
                     f"({ex.passed_count}/{len(ex.tests)} tests) {ex.status.value}")
        lines.extend(f"    note: {note}" for note in ex.notes)
    return clean("\n".join(lines))


def results(report: Report) -> dict:
    tests = []
    for ex in report.exercises:
        for index, test in enumerate(tests_of(ex), start=1):
            tests.append({
                "name": f"{ex.number} · {ex.slug} › {test.name}",
                "number": f"{ex.number}.{index}",
                "score": _score(test.points),
                "max_score": _score(test.max_points),
                "status": "passed" if test.status is Status.PASSED else "failed",
                "output": test_output(ex, test),
                "visibility": VISIBILITY,
            })
    return {
        "score": _score(report.total),
        "execution_time": int(round(report.duration)),
        "output": summary(report),
        "visibility": VISIBILITY,
        "stdout_visibility": "hidden",
        "extra_data": {"attn_grade": {"seed": report.seed, "grader_version": report.grader_version,
                                      "max_total": _score(report.max_total),
                                      "exercises": {str(ex.number): {"status": ex.status.value,
                                                                     "points": _score(ex.points)}
                                                    for ex in report.exercises}}},
        "tests": tests,
    }


def render(report: Report, options: RenderOptions = DEFAULT) -> str:
    return json.dumps(results(report), indent=2, ensure_ascii=False) + "\n"
