"""The report as JUnit XML, for any dashboard that reads test results.

One <testsuite> per exercise, one <testcase> per hidden test:

    passed                                  -> (nothing: a pass)
    failed, not_implemented                 -> <failure type="STATUS">
    error, timeout, crashed, forbidden      -> <error type="STATUS">
    not_run                                 -> <skipped>

The points live in each suite's <properties> (points, max_points, status) and
in every test case's failure text; JUnit itself has no notion of points.
The output is deterministic (no timestamp, no host name), so it can be
compared byte for byte. Text from a submission may hold characters that XML
1.0 forbids (NUL, ANSI escapes): they are replaced, never passed through.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from grader.render.plain import failure_parts
from grader.render.points import points_text
from grader.render.sanitize import clean
from grader.render.options import DEFAULT, RenderOptions
from grader.results import ExerciseResult, Report, Status, TestResult

FAILURE = {Status.FAILED, Status.NOT_IMPLEMENTED}
ERROR = {Status.ERROR, Status.TIMEOUT, Status.CRASHED, Status.FORBIDDEN}
SKIPPED = {Status.NOT_RUN}



def _time(seconds: float) -> str:
    return f"{max(seconds, 0.0):.3f}"


def suite_name(ex: ExerciseResult) -> str:
    return f"{ex.number:02d}-{ex.slug}"


def test_text(test: TestResult) -> str:
    head = f"status: {test.status.value} · points {points_text(test.points)}/{points_text(test.max_points)}"
    return "\n".join([head, *failure_parts(test)])


def _message(test: TestResult) -> str:
    first = (test.message or test.status.value).strip().splitlines()
    return clean(first[0] if first else test.status.value)


def testcase(ex: ExerciseResult, test: TestResult) -> ET.Element:
    case = ET.Element("testcase", {
        "classname": f"attn_grade.ex{ex.number:02d}_{ex.slug.replace('-', '_')}",
        "name": clean(test.name),
        "time": _time(test.duration),
    })
    if test.status in FAILURE:
        ET.SubElement(case, "failure", {"message": _message(test), "type": test.status.value}).text = test_text(test)
    elif test.status in ERROR:
        ET.SubElement(case, "error", {"message": _message(test), "type": test.status.value}).text = test_text(test)
    elif test.status in SKIPPED:
        ET.SubElement(case, "skipped", {"message": _message(test), "type": test.status.value})
    return case


def testsuite(report: Report, ex: ExerciseResult) -> ET.Element:
    counts = _counts(tests_of(ex))
    suite = ET.Element("testsuite", {
        "name": suite_name(ex),
        "tests": str(len(tests_of(ex))),
        "failures": str(counts["failures"]),
        "errors": str(counts["errors"]),
        "skipped": str(counts["skipped"]),
        "time": _time(ex.duration),
    })
    properties = ET.SubElement(suite, "properties")
    for name, value in (("title", ex.title), ("status", ex.status.value),
                        ("points", points_text(ex.points)), ("max_points", points_text(ex.max_points)),
                        ("seed", str(report.seed)), ("grader_version", report.grader_version),
                        ("device", report.device)):
        ET.SubElement(properties, "property", {"name": name, "value": clean(value)})
    for test in tests_of(ex):
        suite.append(testcase(ex, test))
    out = "\n".join(f"note: {n}" for n in ex.notes)
    if ex.output.strip():
        out += ("\n" if out else "") + ex.output
    if out:
        ET.SubElement(suite, "system-out").text = clean(out)
    return suite


def tests_of(ex: ExerciseResult) -> list[TestResult]:
    """The exercise's tests; an exercise that ran none (it could not be graded)
    still shows as one failing case, so no reader counts it as a pass."""
    if ex.tests or ex.status is Status.PASSED:
        return ex.tests
    return [TestResult(name="exercise", status=ex.status, points=ex.points, max_points=ex.max_points,
                       message="; ".join(ex.notes) or f"exercise {ex.number} could not be graded")]


def _counts(tests: list[TestResult]) -> dict[str, int]:
    return {
        "failures": sum(t.status in FAILURE for t in tests),
        "errors": sum(t.status in ERROR for t in tests),
        "skipped": sum(t.status in SKIPPED for t in tests),
    }


def render(report: Report, options: RenderOptions = DEFAULT) -> str:
    every = [t for ex in report.exercises for t in tests_of(ex)]
    counts = _counts(every)
    root = ET.Element("testsuites", {
        "name": clean(f"attn-grade {report.submission}"),
        "tests": str(len(every)),
        "failures": str(counts["failures"]),
        "errors": str(counts["errors"]),
        "skipped": str(counts["skipped"]),
        "time": _time(report.duration),
    })
    for ex in report.exercises:
        root.append(testsuite(report, ex))
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
