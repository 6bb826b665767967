"""check()'s output speaks notebook (issue 12, point 8): notebook calls, not
CLI flags, and the same points figure in the echoed line and in the table."""

from __future__ import annotations

import re
from dataclasses import fields

from grader.notebook import CheckReport, notebook_wording
from grader.render import render_text
from grader.results import Report, Status, TestResult
from tests.reports import fixed_report


def _notebook_report() -> CheckReport:
    report = fixed_report()
    report.exercises = [report.exercises[1]]          # check(2): one exercise, 3.333 points
    notebook_wording(report)
    return CheckReport(**{f.name: getattr(report, f.name) for f in fields(Report)})


def test_the_notebook_scorecard_names_notebook_calls_not_flags():
    report = _notebook_report()
    report.exercises[0].tests += [TestResult(f"more_{i}", Status.FAILED, 0.0, 0.1, message="m",
                                             hint=f"cause {i}") for i in range(8)]
    text = render_text(report, "rich", notebook=True)
    assert "check(2, seed=1234)" in text
    assert "check(2, seed=1234, details=True)" in text             # the hidden failures
    assert not re.search(r"--seed|--details|--format|attn-grade exercise", text), text
    assert "check(1)" in text                                      # the note about exercise 1


def test_points_read_the_same_in_the_line_and_in_the_table():
    report = _notebook_report()
    line = repr(report)
    assert line == "<attn-grade check: exercise 2: 3.3/10 (error)>"
    table_row = next(row for row in render_text(report, "rich", notebook=True).splitlines()
                     if "Causal and padding masks" in row)
    assert "3.3/10" in table_row


def test_the_notebook_repro_uses_the_kernels_own_definitions():
    report = _notebook_report()
    test = report.exercises[0].tests[1]
    test.repro = ("# attn-grade repro: exercise 2, property x\n"
                  "# Run it in your submission folder (`cd exercises && python repro.py`): it raises\n"
                  "# AssertionError until the property holds.\nimport os\nimport sys\n\nimport torch\n\n"
                  "sys.path.insert(0, os.getcwd())   # your exercise files: run this in their folder\n"
                  "from ex02_masks import masked_attention  # noqa: E402\n\nq = torch.zeros(1)\n")
    code = report.repro(test.name)
    assert "from ex02_masks import" not in code and "repro.py" not in code and "sys.path" not in code
    assert "import torch" in code and "q = torch.zeros(1)" in code
    compile(code, "<cell>", "exec")
    assert report.repro("masked_self_attention_runs").startswith("# no repro")


def test_training_curves_as_svg():
    import xml.etree.ElementTree as ET

    from grader.render.svg import training_svg
    from grader.results import ExerciseResult

    assert training_svg(fixed_report()) == ""
    training = {"accuracy": 0.92, "target": 0.9, "curve": [[0, 0.1, 0.1], [50, 1.0, 0.6], [100, 2.0, 0.92]],
                "losses": [3.2, 2.0, 1.1, 0.5]}
    report = Report("s", 1, [ExerciseResult(8, "training", "AMP training loop", Status.PASSED, 10.0, 10.0,
                                            extra={"training": training})])
    svg = training_svg(report)
    root = ET.fromstring(svg)                                   # well-formed
    assert root.tag.endswith("svg") and len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 3
    assert "held-out accuracy 92.0% (target 90%)" in svg and "training loss (last 0.5)" in svg
