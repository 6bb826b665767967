"""The result formats, on one FIXED report built here (no grading needed).

Golden files live in tests/golden/; after a deliberate change of a format,
regenerate them with `ATTN_UPDATE_GOLDEN=1 python -m pytest tests/render/test_formats.py`
and read the diff.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.commands.grading import exit_code
from grader.errors import ExitCode
from grader.render import RENDERERS, render_text
from grader.render import github as github_renderer
from grader.render import gradescope, junit, markdown
from grader.render import rich as rich_renderer
from grader.render.points import points_text, score_text
from grader.results import ExerciseResult, Report, Status, TestResult, report_from_dict
from tests.conftest import GOLDEN, REPO
from tests.reports import T, fixed_report

UPDATE = os.environ.get("ATTN_UPDATE_GOLDEN") == "1"


FORMATS = {"markdown": "report.md", "junit": "report.junit.xml", "gradescope": "report.gradescope.json",
           "github": "report.github.txt"}


def test_every_format_is_registered_for_the_cli():
    assert set(FORMATS) <= set(RENDERERS)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_golden(fmt):
    text = render_text(fixed_report(), fmt)
    golden = GOLDEN / FORMATS[fmt]
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}: run with ATTN_UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8"), f"{fmt} output changed; see {golden}"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_report_read_back_from_json_renders_the_same(fmt):
    report = fixed_report()
    again = report_from_dict(json.loads(json.dumps(report.to_dict())))
    assert render_text(again, fmt) == render_text(report, fmt)


# ---------------------------------------------------------------------- gradescope
VISIBILITY = ["hidden", "after_due_date", "after_published", "visible"]
TEXT_FORMATS = ["text", "html", "simple_format", "md", "ansi"]

# Gradescope's autograder specification ("Output format" of results.json),
# written as a schema; the `required` lists are what attn-grade promises on top.
GRADESCOPE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["score", "execution_time", "output", "tests"],
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "output_format": {"enum": TEXT_FORMATS},
        "test_output_format": {"enum": TEXT_FORMATS},
        "test_name_format": {"enum": TEXT_FORMATS},
        "visibility": {"enum": VISIBILITY},
        "stdout_visibility": {"enum": VISIBILITY},
        "extra_data": {"type": "object"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "number", "score", "max_score", "status", "output", "visibility"],
                "properties": {
                    "score": {"type": "number"},
                    "max_score": {"type": "number"},
                    "status": {"enum": ["passed", "failed"]},
                    "name": {"type": "string"},
                    "name_format": {"enum": TEXT_FORMATS},
                    "number": {"type": "string"},
                    "output": {"type": "string"},
                    "output_format": {"enum": TEXT_FORMATS},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "visibility": {"enum": VISIBILITY},
                    "extra_data": {"type": "object"},
                },
            },
        },
        "leaderboard": {
            "type": "array",
            "items": {"type": "object", "required": ["name", "value"],
                      "properties": {"name": {"type": "string"},
                                     "value": {"type": ["number", "string"]},
                                     "order": {"enum": ["asc", "desc"]}}},
        },
    },
}


def test_gradescope_results_follow_the_spec():
    import jsonschema

    data = json.loads(render_text(fixed_report(), "gradescope"))
    jsonschema.Draft202012Validator.check_schema(GRADESCOPE_SCHEMA)
    jsonschema.validate(data, GRADESCOPE_SCHEMA, cls=jsonschema.Draft202012Validator)


def test_gradescope_scores_are_the_reports_points():
    report = fixed_report()
    data = gradescope.results(report)
    assert data["score"] == pytest.approx(report.total, abs=1e-4)
    assert sum(t["score"] for t in data["tests"]) == pytest.approx(report.total, abs=1e-3)
    assert sum(t["max_score"] for t in data["tests"]) == pytest.approx(report.max_total, abs=1e-3)
    numbers = [t["number"] for t in data["tests"]]
    assert len(set(numbers)) == len(numbers) == sum(len(e.tests) for e in report.exercises)
    statuses = {t["name"]: t["status"] for t in data["tests"]}
    assert statuses["1 · attention › matches_the_equation"] == "passed"
    assert statuses["2 · masks › masked_self_attention_runs"] == "failed"
    assert statuses["8 · training › training_check"] == "failed"  # not run is never awarded


def test_gradescope_failure_output_says_what_to_fix():
    data = gradescope.results(fixed_report())
    test = next(t for t in data["tests"] if t["name"].endswith("masked_attention_matches_the_equation"))
    for part in ("max abs error 0.0624054", "Falsifying example", "applied after the softmax", "property:"):
        assert part in test["output"]


def test_an_exercise_without_tests_still_counts_in_every_format():
    report = Report("s", 1, [ExerciseResult(7, "transformer", "The full Transformer", Status.ERROR,
                                            0.0, 10.0, [], notes=["could not be loaded"])])
    data = gradescope.results(report)
    assert [(t["score"], t["max_score"], t["status"]) for t in data["tests"]] == [(0.0, 10.0, "failed")]
    root = ET.fromstring(junit.render(report))
    assert root.get("errors") == "1" and root.find(".//testcase/error") is not None


# ---------------------------------------------------------------------- junit
def test_junit_is_read_by_a_junit_parser(tmp_path):
    junitparser = pytest.importorskip("junitparser", reason="junitparser is in the dev extras")
    report = fixed_report()
    path = tmp_path / "junit.xml"
    path.write_text(render_text(report, "junit"), encoding="utf-8")
    xml = junitparser.JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert [s.name for s in suites] == [f"{e.number:02d}-{e.slug}" for e in report.exercises]
    expected = {
        "passed": (), "failed": (junitparser.Failure,), "not_implemented": (junitparser.Failure,),
        "error": (junitparser.Error,), "timeout": (junitparser.Error,),
        "crashed": (junitparser.Error,), "forbidden": (junitparser.Error,),
        "not_run": (junitparser.Skipped,),
    }
    for suite, ex in zip(suites, report.exercises):
        assert suite.tests == len(ex.tests)
        cases = list(suite)
        assert [c.name for c in cases] == [t.name for t in ex.tests]
        for case, test in zip(cases, ex.tests):
            kinds = tuple(type(r) for r in case.result)
            assert kinds == expected[test.status.value], (test.name, kinds)
            assert case.is_passed == (test.status is Status.PASSED)
            if test.status is not Status.PASSED:
                assert case.result[0].type == test.status.value
        properties = {p.name: p.value for p in suite.properties()}
        assert properties["points"] == points_text(ex.points)
        assert properties["status"] == ex.status.value
    every = [t for e in report.exercises for t in e.tests]
    assert xml.tests == len(every)
    assert xml.failures == sum(t.status in junit.FAILURE for t in every)
    assert xml.errors == sum(t.status in junit.ERROR for t in every)
    assert xml.skipped == sum(t.status in junit.SKIPPED for t in every)


def test_junit_never_passes_characters_xml_forbids():
    text = render_text(fixed_report(), "junit")
    ET.fromstring(text.encode("utf-8"))  # well-formed: the standard parser accepts it


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_control_characters_from_student_code_are_removed(fmt):
    text = render_text(fixed_report(), fmt)
    if fmt == "gradescope":
        text = json.dumps(json.loads(text), ensure_ascii=False)
    assert "\x00" not in text and "\x1b" not in text and "[31m" not in text


# ---------------------------------------------------------------------- markdown
def _rich_points(report: Report) -> dict[str, str]:
    rows = {}
    for line in rich_renderer.render(report, width=160).splitlines():
        found = re.match(r"\s*│\s*(\d*)\s*│\s*(.*?)\s*│\s*([\d.]+/[\d.]+)\s*│", line)
        if found:
            rows[found.group(1) or found.group(2)] = found.group(3)
    return rows


def _markdown_points(report: Report) -> dict[str, str]:
    rows = {}
    for line in markdown.render(report).splitlines():
        found = re.match(r"\|\s*(\d*)\s*\|\s*(.*?)\s*\|\s*\**([\d.]+/[\d.]+)\**\s*\|", line)
        if found:
            rows[found.group(1) or found.group(2).strip("*")] = found.group(3)
    return rows


def test_markdown_shows_the_same_points_as_the_rich_scorecard():
    report = fixed_report()
    rich_points, md_points = _rich_points(report), _markdown_points(report)
    assert len(rich_points) == len(report.exercises) + 1  # the rows and the total
    assert md_points == rich_points
    assert md_points["total"] == score_text(report.total, report.max_total)


def test_markdown_lists_each_failure_with_what_to_fix():
    text = markdown.render(fixed_report())
    for part in ("*property:* output and weights equal softmax", "**max error:** 0.0624054",
                 "Falsifying example", "💡 **hint:** The mask was applied after the softmax",
                 '(at `ex02_masks.py, line 82`)', "🚧 not implemented · 3 · cross-attention",
                 "⛔ forbidden", "**note:** ex02\\_masks.py imports"):
        assert part in text, part


def test_markdown_keeps_untrusted_text_inside_its_blocks():
    text = markdown.render(fixed_report())
    # The student's output holds ``` : its fence is longer, so it cannot close early.
    assert "````text\ndebug: scores | shape ``` (2, 3)" in text
    report = fixed_report()
    report.exercises[0].title = "a | b\nc"
    row = next(line for line in markdown.render(report).splitlines() if line.startswith("| 1 |"))
    assert "a \\| b c" in row and len(re.findall(r"(?<!\\)\|", row)) == 7
    assert "@\u200bsomeone" not in text  # inside a code block mentions do not fire anyway
    report.exercises[1].notes = ["ping @instructor <img src=x>"]
    assert "@\u200binstructor &lt;img src=x&gt;" in markdown.render(report)


def test_markdown_groups_tests_that_fail_the_same_way():
    report = fixed_report()
    error = report.exercises[1].tests[2]
    twin = TestResult(**{**error.__dict__, "name": "masked_self_attention_keeps_dtype"})
    report.exercises[1].tests.append(twin)
    text = markdown.render(report)          # after the diagnosed cause: one line for both
    assert ("- **💥 error** `masked_self_attention_runs`, `masked_self_attention_keeps_dtype`: "
            "IndexError: too many indices for tensor of dimension 2 (at `ex02_masks.py, line 82`)") in text
    report.exercises[1].tests[1].hint = ""      # no diagnosed cause left: the larger group in full
    text = markdown.render(report)
    # the message once: the traceback below it stops at the student's line
    assert text.count("IndexError: too many indices for tensor of dimension 2") == 1
    assert ("*the same error (IndexError at `ex02_masks.py, line 82`) in 2 properties:* "
            "`masked_self_attention_runs`, `masked_self_attention_keeps_dtype`") in text


# ---------------------------------------------------------------------- github annotations
def test_github_annotations_point_at_the_failing_line():
    lines = github_renderer.render(fixed_report()).splitlines()
    assert lines[0].startswith("::error file=exercises/ex02_masks.py,line=82,title=attn-grade · exercise 2")
    assert any(line.startswith("::error file=exercises/ex06_blocks.py,line=12,") for line in lines)
    # wrong values: on the exercise's file, no line
    assert any(line.startswith("::error file=exercises/ex02_masks.py,title=") for line in lines)
    # not implemented and not run are not problems to annotate
    assert not any("ex03_cross_attention.py" in line or "training_check" in line for line in lines)
    assert all(line.startswith(("::error ", "::notice ")) for line in lines)


def test_github_annotations_cannot_inject_workflow_commands():
    report = fixed_report()
    report.exercises[1].tests[1].message = "bad\n::set-env name=X::1\r\n100% wrong"
    report.exercises[1].tests[1].hint = ""
    out = github_renderer.render(report)
    line = next(ln for ln in out.splitlines() if "masked_attention_matches_the_equation" in ln)
    # the student's line starting with `::` is marked even inside the escaped message
    assert line.endswith("::failed: bad%0A» ::set-env name=X::1%0A100%25 wrong")
    assert not any(ln.startswith("::set-env") for ln in out.splitlines())
    props = line.split("::")[1]
    assert props.count(",") == 1  # file=..., title=... : a comma in a value is escaped


def test_github_paths_follow_the_submission_folder():
    report = fixed_report()
    report.submission = "./work/my exercises/"
    assert "file=work/my exercises/ex02_masks.py,line=82" in github_renderer.render(report)
    report.submission = "ex02_masks.py"  # a single file: its folder
    assert "file=ex02_masks.py,line=82" in github_renderer.render(report)


def test_github_annotations_are_capped_with_a_notice():
    report = fixed_report()
    report.exercises[3].tests = [T(f"t{i}", "failed", 0.0, 1.0, message=f"wrong {i}") for i in range(15)]
    lines = github_renderer.render(report).splitlines()
    assert sum(line.startswith("::error") for line in lines) == github_renderer.MAX_ERRORS
    assert lines[-1].startswith("::notice title=attn-grade::")


# ---------------------------------------------------------------------- exit codes, CLI
def test_fail_under_decides_the_exit_code():
    report = fixed_report()  # 23.3 of 70 points, not all passed
    assert exit_code(report) is ExitCode.SOME_FAILED
    assert exit_code(report, fail_under=20) is ExitCode.ALL_PASSED
    assert exit_code(report, fail_under=report.total) is ExitCode.ALL_PASSED
    assert exit_code(report, fail_under=23.4) is ExitCode.SOME_FAILED
    assert exit_code(report, fail_under=0) is ExitCode.ALL_PASSED


def test_render_command_renders_a_saved_results_file(tmp_path):
    report = fixed_report()
    results = tmp_path / "results.json"
    results.write_text(json.dumps(report.to_dict()), encoding="utf-8")
    out = CliRunner().invoke(main, ["render", str(results), "--format", "markdown"])
    assert out.exit_code == 0, out.output
    assert out.stdout == markdown.render(report)
    target = tmp_path / "deep" / "junit.xml"
    out = CliRunner().invoke(main, ["render", str(results), "--format", "junit", "--output", str(target)])
    assert out.exit_code == 0 and target.read_text(encoding="utf-8") == junit.render(report)


def test_render_command_rejects_a_file_that_is_not_results(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    for path in (bad, tmp_path / "missing.json"):
        out = CliRunner().invoke(main, ["render", str(path)])
        assert out.exit_code == ExitCode.USAGE_ERROR
        assert "Traceback" not in out.output


def test_fail_under_on_the_command_line():
    """The stubs score 0: below 0.5 points (exit 1), not below 0 (exit 0)."""
    from tests.conftest import EXERCISES

    args = ["exercise", "1", "--submission", str(EXERCISES), "--format", "json", "--seed", "3"]
    assert CliRunner().invoke(main, [*args, "--fail-under", "0.5"]).exit_code == ExitCode.SOME_FAILED
    out = CliRunner().invoke(main, [*args, "--fail-under", "0"])
    assert out.exit_code == ExitCode.ALL_PASSED, out.output
    assert json.loads(out.stdout)["total"] == 0
    assert CliRunner().invoke(main, [*args, "--fail-under", "-1"]).exit_code == ExitCode.USAGE_ERROR


# ---------------------------------------------------------------------- the Gradescope autograder
RUN_AUTOGRADER = REPO / "autograder" / "run_autograder"


def _autograder(tmp_path, attn_grade: str, exercises: str):
    import subprocess

    from tests.conftest import SOLUTIONS

    root = tmp_path / "autograder"
    (root / "submission" / "exercises").mkdir(parents=True)
    (root / "source").mkdir()
    for name in ("ex01_attention.py", "ex02_masks.py"):
        (root / "submission" / "exercises" / name).write_text((SOLUTIONS / name).read_text())
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "ATTN_GRADE": attn_grade,
           "ATTN_GRADE_EXERCISES": exercises}
    result = subprocess.run(["bash", str(RUN_AUTOGRADER)], env=env, capture_output=True, text=True,
                            timeout=600)
    return result, root / "results" / "results.json"


@pytest.mark.slow
def test_run_autograder_writes_gradescope_results(tmp_path):
    import shutil
    import sys

    attn_grade = shutil.which("attn-grade", path=str(Path(sys.executable).parent)) or shutil.which("attn-grade")
    if attn_grade is None:
        pytest.skip("the attn-grade script is not installed next to this Python")
    result, results = _autograder(tmp_path, attn_grade, "1")
    assert result.returncode == 0, result.stdout + result.stderr
    import jsonschema

    data = json.loads(results.read_text(encoding="utf-8"))
    jsonschema.validate(data, GRADESCOPE_SCHEMA, cls=jsonschema.Draft202012Validator)
    assert data["score"] == 10.0 and all(t["status"] == "passed" for t in data["tests"])
    assert {t["number"].split(".")[0] for t in data["tests"]} == {"1"}


def test_run_autograder_leaves_no_results_when_grading_itself_fails(tmp_path):
    import shutil
    import sys

    attn_grade = shutil.which("attn-grade", path=str(Path(sys.executable).parent)) or shutil.which("attn-grade")
    if attn_grade is None:
        pytest.skip("the attn-grade script is not installed next to this Python")
    result, results = _autograder(tmp_path / "a", attn_grade, "42")  # no exercise 42: exit 2
    assert result.returncode == ExitCode.USAGE_ERROR and not results.exists()
    result, results = _autograder(tmp_path / "b", "false", "1")  # exits 1 but writes nothing
    assert result.returncode != 0 and not results.exists()
