"""Exercise 8 end to end: solutions score full marks with the training check
(an injected budget: no verdict depends on machine load), stubs score zero,
--no-train shows the check as not run, a slow loop runs out of time, the
scorecard and the CLI options.
"""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from grader.render import rich as rich_render
from grader.results import ExerciseResult, Report, Status
from grader.training import check
from tests.conftest import EXERCISES, FIXTURES, SOLUTIONS, describe, grade_one, make_submission

CHECK = "trains_the_transformer_to_target_in_time"


def _check_test(result: ExerciseResult):
    return next(t for t in result.tests if t.name == CHECK)


# ---------------------------------------------------------------- end to end
@pytest.mark.slow
def test_solutions_score_full_marks_with_the_training_check():
    # A fixed, generous budget: the verdict never depends on how busy the
    # machine is (the calibrated budget is timed in scripts/benchmark.py).
    result = grade_one(SOLUTIONS, 8, train=True, device="cpu", training_budget_s=600.0)
    dump = describe(result)
    assert result.status is Status.PASSED, dump
    assert result.points == pytest.approx(10.0), dump
    figures = result.extra["training"]
    assert figures["passed"] and figures["accuracy"] >= figures["target"] == 0.95, figures
    assert 0 < figures["time_s"] <= figures["budget_s"], figures
    assert figures["device"] == "cpu" and figures["amp"] == "off"
    assert figures["steps"] == figures["curve"][-1][0] and figures["tokens_per_s"] > 0
    assert len(figures["sparkline"]) == len(figures["curve"])
    json.dumps(result.to_dict(), allow_nan=False)  # the JSON report stays strict JSON


@pytest.mark.slow
def test_stubs_score_zero_as_not_implemented():
    result = grade_one(EXERCISES, 8, train=True, device="cpu")
    dump = describe(result)
    assert result.points == 0.0, dump
    assert result.status is Status.NOT_IMPLEMENTED, dump
    assert all(t.status is Status.NOT_IMPLEMENTED for t in result.tests), dump


@pytest.mark.slow
def test_no_train_shows_the_check_as_not_run():
    result = grade_one(SOLUTIONS, 8, train=False)
    check_test = _check_test(result)
    assert check_test.status is Status.NOT_RUN and check_test.points == 0.0, describe(result)
    assert "--no-train" in check_test.message
    assert result.points == pytest.approx(10.0 - check_test.max_points)
    assert all(t.status is Status.PASSED for t in result.tests if t.name != CHECK), describe(result)


@pytest.mark.slow
def test_a_correct_but_slow_loop_runs_out_of_time(tmp_path):
    """End to end through a real worker, with a budget injected so small that
    any loop runs out: the verdict path, not the speed, is what is tested
    here (slow vs fast with an injected clock: the FakeWorker tests below)."""
    submission = make_submission(tmp_path / "submission",
                                 {"ex08_training.py": FIXTURES / "ex08" / "slow_loop_over_the_batch.py"})
    result = grade_one(submission, 8, train=True, device="cpu", training_budget_s=1e-3)
    dump = describe(result)
    check_test = _check_test(result)
    assert check_test.status is Status.FAILED, dump
    assert "ran out of time at accuracy" in check_test.message, dump
    assert all(t.status is Status.PASSED for t in result.tests if t.name != CHECK), dump
    figures = result.extra["training"]
    assert not figures["passed"] and figures["accuracy"] < 0.95, figures


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_solutions_pass_the_training_check_on_cuda():  # pragma: no cover - GPU machines only
    result = grade_one(SOLUTIONS, 8, train=True, device="cuda")
    assert result.status is Status.PASSED, describe(result)
    assert result.extra["training"]["amp"] == "fp16"


# ---------------------------------------------------------------- scorecard and CLI
def test_scorecard_shows_the_training_check():
    figures = check.CheckResult(passed=True, reason="ok", device="cpu", amp="off", target=0.95,
                                accuracy=0.962, steps=175, time_s=6.25, budget_s=21.0,
                                tokens_per_s=12345.0, curve=[[25, 1.0, 0.3], [175, 6.25, 0.962]])
    exercise = ExerciseResult(8, "training", "AMP training loop", Status.PASSED, 10.0, 10.0,
                              extra={"training": figures.to_dict()})
    text = " ".join(rich_render.render(Report(submission="s", seed=1, exercises=[exercise])).split())
    assert "training check" in text and "96.2%" in text and "175 steps" in text
    assert "6.2 s of a 21.0 s budget" in text and "12,345 tokens/s" in text and "cpu fp32" in text
    assert check.sparkline([0.3, 0.962]) in text


def test_cli_passes_amp_to_the_grading_options(monkeypatch):
    from grader import cli, runner

    seen = {}

    def fake_grade(submission, exercises, options, progress=None):
        seen["options"] = options
        return Report(submission=str(submission), seed=1)

    monkeypatch.setattr(runner, "grade", fake_grade)
    monkeypatch.setattr("grader.sandbox.spawn.prewarm", lambda *a, **k: None)
    out = CliRunner().invoke(cli.main, ["exercise", "8", "--submission", str(SOLUTIONS),
                                        "--device", "cpu", "--amp", "bf16", "--no-train",
                                        "--format", "json"])
    assert seen["options"].amp == "bf16" and seen["options"].train is False, out.output
    bad = CliRunner().invoke(cli.main, ["exercise", "8", "--amp", "int8"])
    assert bad.exit_code == 2


@pytest.mark.slow
def test_a_minus_1e9_mask_fails_the_fp16_check_with_the_fix(tmp_path):
    """The course's -1e9 fill passes exercise 2, then overflows exercise 8's
    fp16 AMP training (autocast fp16 works on the CPU): the message says why
    and how to fix it."""
    submission = make_submission(tmp_path / "submission",
                                 {"ex02_masks.py": FIXTURES / "ex02" / "correct_large_negative.py"})
    result = grade_one(submission, 8, train=True, device="cpu", amp="fp16", max_examples=1)
    check_test = _check_test(result)
    assert check_test.status is Status.ERROR, describe(result)
    assert "c10::Half without overflow" in check_test.message, describe(result)
    assert 'float("-inf")' in check_test.message and "finfo" in check_test.message
    assert all(t.status is Status.PASSED for t in result.tests if t.name != CHECK), describe(result)
