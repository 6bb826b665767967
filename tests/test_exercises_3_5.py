"""Exercises 3 (cross-attention), 4 (multi-head attention) and 5 (positional
encoding): the reference solutions get 30/30, the stubs nothing as "not
implemented", a submission calling the built-ins it should write gets zero as
"forbidden", a failure coming from exercise 2 is blamed on exercise 2, and the
judge's own references agree with PyTorch, with the solutions and with every
correct float32 way of computing the sinusoidal table.

The wrong and correct submissions are in tests/fixtures/ex03, ex04 and ex05
(graded by tests/test_fixtures.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from grader import hints
from grader.hidden import oracles
from grader.hidden import strategies as S
from grader.results import Status
from tests.conftest import import_solution, EXERCISES, FIXTURES, SOLUTIONS, describe, grade, make_submission

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
def test_stubs_score_zero_as_not_implemented():
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


# ------------------------------------------------------------------ the judge's references
@settings(max_examples=60, deadline=None)
@given(case=S.multi_head_cases())
def test_the_paper_oracle_agrees_with_torch_multihead_attention(case):
    q, k, v = case.inputs()
    attn_mask, key_padding_mask = case.mask_tensors()
    state = case.weights()
    out, weights = oracles.multi_head(q, k, v, state, case.num_heads, attn_mask, key_padding_mask)
    ref_out, ref_weights = oracles.torch_multi_head(q, k, v, state, case.num_heads, attn_mask,
                                                    key_padding_mask)
    torch.testing.assert_close(out, ref_out, atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(weights, ref_weights, atol=1e-10, rtol=1e-9)


@settings(max_examples=30, deadline=None)
@given(case=S.multi_head_cases())
def test_the_solution_agrees_with_the_oracle(case):
    mha = _solution("ex04_multi_head").MultiHeadAttention(case.d_model, case.num_heads, bias=case.bias)
    mha.to(case.dtype).load_state_dict(case.weights())
    q, k, v = case.inputs()
    attn_mask, key_padding_mask = case.mask_tensors()
    out, weights = mha(q, k, v, attn_mask=attn_mask, key_padding_mask=key_padding_mask)
    ref_out, ref_weights = oracles.multi_head(q, k, v, case.weights(), case.num_heads, attn_mask,
                                              key_padding_mask)
    tol = dict(atol=2e-5, rtol=1e-4) if case.dtype == torch.float32 else dict(atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(out.double(), ref_out, **tol)
    torch.testing.assert_close(weights.double(), ref_weights, **tol)


def test_masks_never_hide_a_whole_row():
    for seed in range(200):
        for masks in ("attn", "padding", "both"):
            case = S.MultiHeadCase(batch=3, lq=1 + seed % 5, lk=1 + (seed // 5) % 5, num_heads=2, d_k=2,
                                   bias=True, kind="cross", masks=masks,
                                   mask_style="causal" if seed % 2 else "random",
                                   dtype=torch.float64, seed=seed)
            attn_mask, key_padding_mask = case.mask_tensors()
            full = torch.zeros(case.batch, case.lq, case.lk, dtype=torch.bool)
            if attn_mask is not None:
                full |= attn_mask
            if key_padding_mask is not None:
                full |= key_padding_mask[:, None, :]
                assert case.lk == 1 or bool(key_padding_mask.any()), case   # padding really pads
            assert not bool(full.all(-1).any()), case


def test_head_mistakes_are_invisible_with_one_head_and_visible_with_two():
    """Why the strategies draw several heads, d_k > 1 and several positions."""
    one = S.MultiHeadCase(batch=2, lq=3, lk=3, num_heads=1, d_k=6, bias=False, kind="self", masks="none",
                          mask_style="random", dtype=torch.float64, seed=1)
    two = one.replace(num_heads=2, d_k=3)
    for mistake in (dict(split="view"), dict(merge="view"), dict(split="strided", merge="strided")):
        for case, visible in ((one, False), (two, True)):
            q, k, v = case.inputs()
            right, _ = oracles.multi_head(q, k, v, case.weights(), case.num_heads)
            wrong, _ = oracles.multi_head(q, k, v, case.weights(), case.num_heads, **mistake)
            assert (not torch.allclose(right, wrong)) is visible, (mistake, case)


def test_every_named_mistake_has_a_text():
    from grader.hidden import test_ex03_cross_attention as T3
    from grader.hidden import test_ex04_multi_head as T4
    from grader.hidden import test_ex05_positional_encoding as T5

    case3 = S.CrossAttentionCase(batch=2, lq=3, lk=3, d_model=4, dtype=torch.float64, seed=3)
    x_q, x_k, x_v = case3.inputs()
    mask = S.MaskSpec("random", "full", 3).build(case3.attention_case())
    keys = set(T3._mistakes(case3, x_q, x_k, x_v, mask))
    case4 = S.MultiHeadCase(batch=2, lq=3, lk=3, num_heads=2, d_k=2, bias=True, kind="cross", masks="both",
                            mask_style="random", dtype=torch.float64, seed=3)
    outs, weights = T4._mistakes(case4)
    keys |= set(outs) | set(weights) | set(T5._mistakes(10, 8)) | {"heads_mixed"}
    missing = sorted(k for k in keys if k not in hints.MISTAKES and k not in hints.SAME_MISTAKE)
    assert not missing, missing


# ------------------------------------------------------------------ the sinusoidal table
def _pe_explog(L, d):
    pe = torch.zeros(L, d)
    position = torch.arange(0, L).unsqueeze(1).float()
    div = torch.exp(torch.arange(0, d, 2).float() * (-math.log(10000.0) / d))
    pe[:, 0::2], pe[:, 1::2] = torch.sin(position * div), torch.cos(position * div)
    return pe


def _pe_pow(L, d):
    angle = torch.arange(L, dtype=torch.float32)[:, None] / torch.pow(
        10000.0, torch.arange(0, d, 2, dtype=torch.float32) / d)
    return torch.stack([angle.sin(), angle.cos()], -1).flatten(1)


def _pe_reciprocal(L, d):
    angle = torch.arange(L, dtype=torch.float32)[:, None] * (
        1.0 / 10000 ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    return torch.stack([angle.sin(), angle.cos()], -1).flatten(1)


def _pe_numpy(L, d):
    angle = np.arange(L, dtype=np.float32)[:, None] / np.power(
        np.float32(10000), np.arange(0, d, 2, dtype=np.float32) / np.float32(d))
    pe = np.zeros((L, d), np.float32)
    pe[:, 0::2], pe[:, 1::2] = np.sin(angle), np.cos(angle)
    return torch.from_numpy(pe)


def _pe_logspace(L, d):
    position = torch.arange(L, dtype=torch.float32)[:, None]
    angle = torch.exp(torch.log(position) - torch.arange(0, d, 2, dtype=torch.float32) / d
                      * math.log(10000.0))
    return torch.stack([angle.sin(), angle.cos()], -1).flatten(1)


def _pe_float64(L, d):
    return oracles.sinusoidal(L, d).float()


FLOAT32_WAYS = [_pe_explog, _pe_pow, _pe_reciprocal, _pe_numpy, _pe_logspace, _pe_float64]


@pytest.mark.parametrize("way", FLOAT32_WAYS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("d_model", [2, 16, 64, 512])
def test_every_correct_float32_table_is_within_the_position_tolerance(way, d_model):
    from grader.hidden.test_ex05_positional_encoding import assert_table_close

    assert_table_close(way(5000, d_model), oracles.sinusoidal(5000, d_model), way.__name__)


@pytest.mark.parametrize("layout, exponent, divide", [
    ("swapped", "2i", True), ("concatenated", "2i", True), ("interleaved", "i", True),
    ("interleaved", "feature", True), ("interleaved", "2i", False)])
def test_every_table_mistake_is_outside_the_tolerance(layout, exponent, divide):
    from grader.hidden.test_ex05_positional_encoding import assert_table_close
    from grader.outcomes import PropertyFailure

    for d_model in (4, 8, 64):
        wrong = oracles.sinusoidal(100, d_model, layout=layout, exponent=exponent, divide=divide).float()
        with pytest.raises(PropertyFailure):
            assert_table_close(wrong, oracles.sinusoidal(100, d_model), "table")


def test_the_oracle_table_is_the_solution_table():
    solution = _solution("ex05_positional_encoding")
    for max_len, d_model in ((1, 2), (7, 4), (100, 64)):
        table = solution.sinusoidal_encoding(max_len, d_model)
        torch.testing.assert_close(table.double(), oracles.sinusoidal(max_len, d_model), atol=1e-7, rtol=0)
