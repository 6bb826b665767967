"""The hidden tests end to end, exercise by exercise (grader/hidden/test_ex*.py):
solutions get full marks, untouched stubs get zero as not implemented, the
submission folder is never written, forbidden built-ins cost the exercise,
and failures that come through an earlier exercise say so.  The fixture
catalogue (correct, wrong, hostile) is graded by tests/hidden/test_fixtures.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.results import Status
from tests.conftest import (
    EXERCISES,
    FIXTURES,
    SOLUTIONS,
    describe,
    grade,
    import_solution,
    make_submission,
)


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", ".hypothesis", "*.pyc"))
    return dest


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


@pytest.mark.slow
def test_solutions_score_20_of_20_and_the_folder_is_untouched(tmp_path):
    submission = _copy(SOLUTIONS, tmp_path / "solutions")
    before = _snapshot(submission)
    report = grade(submission, 1, 2)
    assert [e.number for e in report.exercises] == [1, 2]
    for result in report.exercises:
        assert result.status is Status.PASSED, describe(result)
        assert result.points == pytest.approx(10.0), describe(result)
        assert all(t.status is Status.PASSED for t in result.tests), describe(result)
        assert len(result.tests) >= 5, describe(result)
    assert report.total == pytest.approx(20.0)
    assert report.max_total == pytest.approx(20.0)
    assert _snapshot(submission) == before, "grading wrote into the submission folder"


@pytest.mark.slow
def test_untouched_stubs_score_0_all_not_implemented_and_the_folder_is_untouched(tmp_path):
    submission = _copy(EXERCISES, tmp_path / "exercises")
    before = _snapshot(submission)
    report = grade(submission, 1, 2, max_examples=3)
    assert report.total == 0.0
    for result in report.exercises:
        dump = describe(result)
        assert result.status is Status.NOT_IMPLEMENTED, dump
        assert result.points == 0.0, dump
        assert result.tests, dump
        for test in result.tests:
            assert test.status is Status.NOT_IMPLEMENTED, dump
            assert "Exercise" in test.message or "NotImplementedError" in test.message, dump
            assert "Implement it" in test.hint, dump
    assert _snapshot(submission) == before, "grading wrote into the submission folder"


@pytest.mark.slow
def test_the_real_solutions_folder_is_left_untouched(tmp_path):
    """Grading solutions/ in place creates no .hypothesis/, __pycache__ or other file there."""
    before = set(_snapshot(SOLUTIONS))
    report = grade(SOLUTIONS, 2, max_examples=3)
    assert report.exercises[0].status is Status.PASSED, describe(report.exercises[0])
    after = set(_snapshot(SOLUTIONS))
    assert after == before, f"new in solutions/: {sorted(after - before)}"


pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnknownMarkWarning")


_solution = import_solution


# ------------------------------------------------------------------ grading
@pytest.mark.slow
def test_solutions_score_30_of_30():
    report = grade(SOLUTIONS, 3, 4, 5)
    for result in report.exercises:
        assert result.status is Status.PASSED, describe(result)
        assert result.points == pytest.approx(10.0), describe(result)
    assert report.total == pytest.approx(30.0)


@pytest.mark.slow
def test_stubs_of_exercises_3_to_5_score_zero_as_not_implemented():
    report = grade(EXERCISES, 3, 4, 5)
    for result in report.exercises:
        assert result.points == 0.0, describe(result)
        assert result.status is Status.NOT_IMPLEMENTED, describe(result)
        assert all(t.status is Status.NOT_IMPLEMENTED for t in result.tests), describe(result)


_MHA_INIT = '''
import torch
import torch.nn as nn


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, bias=True):
        super().__init__()
        if d_model % num_heads:
            raise ValueError("d_model % num_heads != 0")
        self.num_heads = num_heads
        self.d_k = d_model // num_heads
        self.W_q = nn.Linear(d_model, d_model, bias=bias)
        self.W_k = nn.Linear(d_model, d_model, bias=bias)
        self.W_v = nn.Linear(d_model, d_model, bias=bias)
        self.W_o = nn.Linear(d_model, d_model, bias=bias)
'''


# nn.MultiheadAttention called by name: caught before anything runs.
FORBIDDEN_MHA_DIRECT = _MHA_INIT + '''
    def forward(self, query, key, value, attn_mask=None, key_padding_mask=None):
        mha = nn.MultiheadAttention(query.size(-1), self.num_heads, bias=self.W_q.bias is not None,
                                    batch_first=True).to(query.dtype)
        with torch.no_grad():
            mha.in_proj_weight.copy_(torch.cat([self.W_q.weight, self.W_k.weight, self.W_v.weight]))
            mha.out_proj.weight.copy_(self.W_o.weight)
        return mha(query, key, value, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                   average_attn_weights=False)
'''


# nn.MultiheadAttention reached through getattr with a name built at run time:
# the static scan cannot see it, the worker's tripwire does.
FORBIDDEN_MHA_GETATTR = _MHA_INIT + '''
    def forward(self, query, key, value, attn_mask=None, key_padding_mask=None):
        name = "".join(["Multi", "head", "Attention"])
        builtin = getattr(nn, name)(query.size(-1), self.num_heads, batch_first=True).to(query.dtype)
        return builtin(query, key, value, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                       average_attn_weights=False)
'''


# F.scaled_dot_product_attention through getattr with a name built at run time.
FORBIDDEN_SDPA_GETATTR = '''
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.W_q = nn.Linear(d_model, d_model, bias=False)
        self.W_k = nn.Linear(d_model, d_model, bias=False)
        self.W_v = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x_q, x_k, x_v, mask=None):
        attend = getattr(F, "scaled_dot_product" + "_attention")
        return attend(self.W_q(x_q), self.W_k(x_k), self.W_v(x_v),
                      attn_mask=None if mask is None else ~mask)
'''


# F.scaled_dot_product_attention called by name.
FORBIDDEN_SDPA_DIRECT = FORBIDDEN_SDPA_GETATTR.replace(
    'attend = getattr(F, "scaled_dot_product" + "_attention")', 'attend = F.scaled_dot_product_attention')


@pytest.mark.slow
@pytest.mark.parametrize("number, file, source", [
    (4, "ex04_multi_head.py", FORBIDDEN_MHA_DIRECT),
    (4, "ex04_multi_head.py", FORBIDDEN_MHA_GETATTR),
    (3, "ex03_cross_attention.py", FORBIDDEN_SDPA_DIRECT),
    (3, "ex03_cross_attention.py", FORBIDDEN_SDPA_GETATTR),
], ids=["mha-direct", "mha-getattr", "sdpa-direct", "sdpa-getattr"])
def test_calling_the_builtin_is_forbidden(tmp_path, number, file, source):
    submission = make_submission(tmp_path / "submission", {file: source})
    report = grade(submission, number, max_examples=3)
    result = report.exercises[0]
    assert result.status is Status.FORBIDDEN, describe(result)
    assert result.points == 0.0, describe(result)
    assert all(t.points == 0.0 for t in result.tests), describe(result)
    messages = " ".join(t.message for t in result.tests if t.status is Status.FORBIDDEN)
    builtin = "MultiheadAttention" if number == 4 else "scaled_dot_product_attention"
    assert builtin in messages, describe(result)


@pytest.mark.slow
def test_a_wrong_exercise_2_is_named_in_exercise_4s_report(tmp_path):
    """A correct exercise 4 importing a wrong exercise 2 (masks read as True =
    allowed), graded together on the student's own files (--dependencies own):
    exercise 4's report says to fix exercise 2 first."""
    folder = FIXTURES / "ex04" / "wrong_dependency_ex02"
    submission = make_submission(tmp_path / "submission", {folder.name: folder})
    report = grade(submission, 2, 4, max_examples=5, dependencies="own")
    ex02, ex04 = report.exercises
    assert ex02.status is not Status.PASSED, describe(ex02)
    assert ex04.status is not Status.PASSED, describe(ex04)
    notes = " ".join(ex04.notes)
    assert "your ex02" in notes and "fix exercise 2 first" in notes, (notes, describe(ex04))
    # The same exercise 4 on top of a correct exercise 2 gets full marks.
    clean = make_submission(tmp_path / "clean", {"ex04_multi_head.py": folder / "ex04_multi_head.py"})
    result = grade(clean, 4, max_examples=5).exercises[0]
    assert result.status is Status.PASSED, describe(result)


@pytest.mark.slow
def test_an_error_raised_in_exercise_2_is_blamed_on_it(tmp_path):
    """A correct exercise 4 whose exercise 2 crashes without a mask, graded on
    the student's own files: the errors say where they were raised, and
    which exercise to fix."""
    folder = FIXTURES / "ex04" / "wrong_dependency_ex02_raises"
    submission = make_submission(tmp_path / "submission", {folder.name: folder})
    result = grade(submission, 4, max_examples=3, dependencies="own").exercises[0]
    assert result.status is Status.ERROR, describe(result)
    errors = [t for t in result.tests if t.status is Status.ERROR]
    assert errors and all("raised inside ex02_masks.py, your exercise 2" in t.message
                          for t in errors), describe(result)
    assert any("fix exercise 2 first" in note for note in result.notes), result.notes


pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnknownMarkWarning")


_solution = import_solution


# ------------------------------------------------------------------ grading
@pytest.mark.slow
def test_solutions_of_exercises_6_and_7_score_full_marks():
    report = grade(SOLUTIONS, 6, 7)
    for result in report.exercises:
        assert result.status is Status.PASSED, describe(result)
        assert result.points == pytest.approx(10.0), describe(result)


@pytest.mark.slow
def test_stubs_of_exercises_6_and_7_score_zero_as_not_implemented():
    report = grade(EXERCISES, 6, 7)
    for result in report.exercises:
        assert result.points == 0.0, describe(result)
        assert result.status is Status.NOT_IMPLEMENTED, describe(result)
        assert all(t.status is Status.NOT_IMPLEMENTED for t in result.tests), describe(result)
