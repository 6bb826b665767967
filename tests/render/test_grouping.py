"""One cause, said once (issue 12, point 3), on reports built by hand.

One `.T` bug seen by six properties is one panel ("likely cause: ..., seen
in 6 properties"), not six; an identical error (a syntax error) seen by
every test is shown once; a bug fits in about 40 lines; `details` shows
every failure in full; descriptions are never cut.
"""

from __future__ import annotations

import os
import re

from grader.render import render_text
from grader.render.grouping import failure_groups
from grader.results import ExerciseResult, Report, Status, TestResult
from tests.conftest import GOLDEN

UPDATE = os.environ.get("ATTN_UPDATE_GOLDEN") == "1"
TRANSPOSED = "The weights are transposed: softmax over the keys gives (..., Lq, Lk); do not transpose them."
PROPERTIES = ["matches_the_equation", "weights_are_probabilities", "keys_and_values_are_a_set",
              "self_attention_matches_the_equation", "self_attention_equals_torch_multihead_attention",
              "self_attention_is_permutation_equivariant"]
LONG = ("output and weights equal softmax(q kᵀ / sqrt(d_k)) v, for any batch dims, Lq != Lk, d_k != d_v, "
        "in the input's dtype, with every query answered on its own and the weights of each query "
        "summing to one over the keys, which is the whole point of the property (END).")


def transposed_bug_report() -> Report:
    tests = [TestResult(
        name=name, status=Status.FAILED, points=0.0, max_points=10 / 6, hint=TRANSPOSED,
        description=LONG if i == 0 else f"property {i}",
        message=(f"weights differs from the reference: max abs error 0.{i + 1}5 (allowed 2e-05 + "
                 "0.0001·|expected|); at index (0, 1) got 0.26, expected 0.33; shape (2, 2), dtype torch.float32"),
        example=("Falsifying example: test(\n    case=AttentionCase(batch=(), lq=2, lk=2, d_k=1, d_v=1, "
                 f"dtype=float32, seed={i}),\n)"))
        for i, name in enumerate(PROPERTIES)]
    tests.append(TestResult(name="keeps_the_input_dtype", status=Status.PASSED, points=10 / 6,
                            max_points=10 / 6))
    return Report("exercises", 99, [ExerciseResult(1, "attention", "Scaled dot-product attention",
                                                   Status.FAILED, 10 / 6, 10.0, tests)])


def syntax_error_report() -> Report:
    message = "syntax error in exercises/ex02_masks.py, line 12: invalid syntax"
    tests = [TestResult(name=f"property_{i}", status=Status.ERROR, points=0.0, max_points=1.25,
                        message=message, traceback='  File "ex02_masks.py", line 12\n    def f(\n'
                        "SyntaxError: invalid syntax") for i in range(8)]
    return Report("exercises", 5, [ExerciseResult(2, "masks", "Causal and padding masks", Status.ERROR,
                                                  0.0, 10.0, tests)])


def _panels(text: str) -> list[str]:
    return re.findall(r"╭─ .*?╰─+╯", text, flags=re.S)


def test_one_diagnosed_mistake_is_one_panel_of_at_most_40_lines():
    text = render_text(transposed_bug_report(), "rich")
    panels = _panels(text)
    assert len(panels) == 1, text
    panel = panels[0]
    assert len(panel.splitlines()) <= 40
    flat = " ".join(line.strip("│ ") for line in panel.splitlines())
    assert "likely cause: The weights are transposed" in flat
    assert "seen in 6 properties: " + ", ".join(PROPERTIES) in re.sub(r"\s+", " ", flat)
    assert flat.count("Falsifying example") == 1                  # one example
    assert "hint:" not in flat                                     # the cause is said once


def test_an_identical_error_is_shown_once_per_exercise():
    for fmt in ("rich", "markdown"):
        text = render_text(syntax_error_report(), fmt)
        assert text.count("invalid syntax\n") <= 2 and "the same error in 8 properties" in text, fmt


def test_details_shows_every_failure_in_full():
    text = render_text(transposed_bug_report(), "rich", details=True)
    assert len(_panels(text)) == len(PROPERTIES)
    assert text.count("hint: The weights are transposed") == len(PROPERTIES)
    md = render_text(transposed_bug_report(), "markdown", details=True)
    assert md.count("Falsifying example") == len(PROPERTIES)


def test_descriptions_are_shown_whole():
    for fmt in ("rich", "markdown"):
        text = render_text(transposed_bug_report(), fmt)
        assert "(END)" in text.replace("\\", ""), fmt


def test_more_groups_than_shown_point_to_details_not_to_json():
    report = transposed_bug_report()
    for i, test in enumerate(report.exercises[0].tests[:6]):
        test.hint = f"mistake {i}"                                  # six different causes
    report.exercises[0].tests += [TestResult(name=f"extra_{i}", status=Status.FAILED, points=0.0,
                                             max_points=0.1, hint=f"other {i}") for i in range(3)]
    for fmt in ("rich", "markdown"):
        text = render_text(report, fmt)
        assert "--format json" not in text and "JSON results" not in text
        # one cause in full, six more in brief, and the last two counted
        assert "… and 2 more failing tests in exercise 1" in text
        assert "also failing (6 properties)" in text.replace("*", "")
        assert "extra_0" in text and "extra_1" not in text
        assert "attn-grade exercise 1 --seed 99 --details" in re.sub(r"\s*│?\n│?\s*", " ", text)
    notebook = render_text(report, "rich", notebook=True)
    assert "check(1, seed=99, details=True)" in notebook and "--details" not in notebook


def test_grouping_keeps_different_errors_apart():
    report = syntax_error_report()
    report.exercises[0].tests[3].message = "NameError: name 'x' is not defined"
    groups = failure_groups(report.exercises[0].tests)
    assert [len(g.tests) for g in groups] == [7, 1]
    assert [len(g.tests) for g in failure_groups(report.exercises[0].tests, details=True)] == [1] * 8


def test_golden_grouped_panel():
    for fmt, name in (("rich", "grouped.rich.txt"), ("markdown", "grouped.md")):
        text = render_text(transposed_bug_report(), fmt)
        golden = GOLDEN / name
        if UPDATE:
            golden.write_text(text, encoding="utf-8")
        assert text == golden.read_text(encoding="utf-8"), f"{fmt} output changed; see {golden}"


def test_the_description_is_the_docstrings_whole_first_paragraph():
    from grader.runner import _first_paragraph

    doc = """with a bool mask broadcastable to (B, Lq, Lk) — (Lq, Lk) or
    (B, Lq, Lk) — masked keys get no weight.

    Catches a mask applied after the softmax."""
    assert _first_paragraph(doc) == ("with a bool mask broadcastable to (B, Lq, Lk) — (Lq, Lk) or "
                                     "(B, Lq, Lk) — masked keys get no weight.")


def _big_module_case():
    import torch

    from grader.counterexample import encode

    g = torch.Generator().manual_seed(0)
    weights = {f"{n}.weight": encode(torch.randn(8, 8, generator=g)) for n in ("W_q", "W_k", "W_v", "W_o")}
    got = torch.randn(2, 5, 8, generator=g)
    return {"inputs": {"d_model": 8, "num_heads": 2, **weights,
                       "query": encode(torch.randn(2, 5, 8, generator=g))},
            "got": {"output": encode(got)}, "expected": {"output": encode(got * 1.5)},
            "tolerance": {"atol": 2e-5, "rtol": 1e-4}, "call": "MultiHeadAttention(d_model, num_heads)(query, query, query)[0]"}


def test_a_failing_case_with_big_weights_still_fits_in_40_lines():
    report = transposed_bug_report()
    del report.exercises[0].tests[1:-1]
    report.exercises[0].tests[0].counterexample = _big_module_case()
    report.exercises[0].tests[0].repro = "print('repro')\n"
    text = render_text(report, "rich")
    (panel,) = _panels(text)
    assert len(panel.splitlines()) <= 40, panel
    assert ("W_q.weight, W_k.weight, W_v.weight, W_o.weight (8, 8) float32 (values: in the repro, or with "
            "details)") in panel
    assert "attn-grade repro 1 matches_the_equation --seed 99" in panel
    full = render_text(report, "rich", details=True)
    assert re.search(r"W_q.weight \(8, 8\) float32 +│", full) and "(values: in the repro" not in full


def test_render_command_takes_details(tmp_path):
    import json

    from click.testing import CliRunner

    from grader.commands.render import render_command

    results = tmp_path / "results.json"
    results.write_text(json.dumps(transposed_bug_report().to_dict()), encoding="utf-8")
    out = CliRunner().invoke(render_command, [str(results), "--format", "markdown", "--details"])
    assert out.exit_code == 0, out.output
    assert out.stdout == render_text(transposed_bug_report(), "markdown", details=True)


def test_masked_weights_are_marked_in_the_heatmap():
    import torch

    from grader.counterexample import encode

    mask = torch.tensor([[False, True], [False, False]])
    expected = torch.tensor([[1.0, 0.0], [0.4, 0.6]], dtype=torch.float64)
    got = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
    report = transposed_bug_report()
    del report.exercises[0].tests[1:-1]
    report.exercises[0].tests[0].counterexample = {
        "inputs": {"mask": encode(mask)}, "got": {"weights": encode(got)},
        "expected": {"weights": encode(expected)}, "tolerance": {"atol": 2e-5, "rtol": 1e-4},
        "call": "masked_attention(q, k, v, mask)[1]"}
    text = render_text(report, "rich")
    assert "×0.3*" in text and re.search(r"█ +1 +× +0 ", text)      # hidden key marked, wrong cell starred
    md = render_text(report, "markdown")
    assert "| got 0 | **▓ 0.7** | **× 0.3** |" in md


def test_one_cause_in_full_and_the_other_failures_in_a_line_or_two_each():
    report = transposed_bug_report()
    tests = report.exercises[0].tests
    tests[4].hint = tests[5].hint = "Something else entirely."
    tests[4].status = tests[5].status = Status.FAILED
    text = render_text(report, "rich")
    panels = _panels(text)
    assert len(panels) == 2, text
    assert "likely cause: The weights are transposed" in panels[0]       # the larger diagnosed group
    brief = panels[1]
    assert "also failing (2 properties)" in brief
    flat = " ".join(brief.replace("│", " ").split())
    assert "✘ self_attention_equals_torch_multihead_attention, self_attention_is_permutation_equivariant: " \
           "weights differs from the reference: max abs error 0.55 hint:" in flat
    assert "hint: Something else entirely." in flat and "at index" not in flat
    md = render_text(report, "markdown")
    assert "**also failing** (2 properties):" in md and "💡 Something else entirely." in md


def test_a_group_is_shown_by_its_smallest_failing_case():
    report = transposed_bug_report()
    tests = report.exercises[0].tests
    big = {"shape": [2, 3, 3], "dtype": "float32", "values": [[[0.5] * 3] * 3] * 2}
    small = {"shape": [1, 2], "dtype": "float32", "values": [[0.5, 0.5]]}
    for test, value in zip(tests, [big, small, big]):
        test.counterexample = {"inputs": {"q": value}, "got": {"weights": value}, "expected": {"weights": value}}
    group = failure_groups(tests)[0]
    assert group.first is tests[1]


def test_a_real_dot_T_bug_is_one_panel_of_at_most_40_lines(tmp_path):
    """Graded for real: `k.T` raises a different size error in each of nine
    properties; they share the raising line and the diagnosis, so they are
    one panel that names the line, with the failing input (issue 12)."""
    from tests.conftest import FIXTURES, grade, make_submission

    submission = make_submission(tmp_path / "s", {"ex01_attention.py": FIXTURES / "ex01" / "wrong_k_dot_T.py"})
    report = grade(submission, 1, seed=1, max_examples=6, own_stack=False)
    text = render_text(report, "rich")
    panels = _panels(text)
    assert len(panels) == 2 and "output of your code" in panels[1], text   # + the warning torch printed
    flat = " ".join(panels[0].replace("│", " ").split())
    failing = sum(t.status is not Status.PASSED for t in report.exercises[0].tests)
    assert f"seen in {failing} properties (RuntimeError at ex01_attention.py, line 13)" in flat
    assert "likely cause:" in flat and "k.transpose(-2, -1)" in flat
    assert "failing input:" in flat and "case=AttentionCase(" in flat
    assert len((panels[0] + panels[1]).splitlines()) <= 40
