"""The precision policy of the hidden tests (docs/precision.md), on real code."""

from __future__ import annotations

import math

import pytest
import torch

from grader.hidden import checks, oracles
from grader.hidden import strategies as S
from grader.outcomes import PropertyFailure


def _lesson_attention(q, k, v, scale: str):
    """Attention as learners write it, in the input's dtype except for the scale."""
    d_k = k.size(-1)
    scores = q @ k.transpose(-2, -1)
    if scale == "float32 tensor, divided":
        scores = scores / torch.tensor(d_k ** 0.5)
    elif scale == "float32 tensor, multiplied":
        scores = scores * torch.tensor(d_k ** -0.5)
    else:
        scores = scores / math.sqrt(d_k)
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def _cases(n=60):
    for seed in range(n):
        yield S.AttentionCase(batch=(2,), lq=2 + seed % 4, lk=3 + seed % 4, d_k=(3, 5, 6, 7)[seed % 4],
                              d_v=2, dtype=torch.float64, seed=seed), (3.0, 10.0, 30.0)[seed % 3]


@pytest.mark.parametrize("scale", ["float32 tensor, divided", "float32 tensor, multiplied"])
def test_a_float32_scale_is_accepted_on_float64_cases(scale):
    rejected_without_policy = 0
    for case, size in _cases():
        q, k, v = case.tensors()
        q = q * size
        out, weights = _lesson_attention(q, k, v, scale)
        ref_out, ref_weights = oracles.attention(q, k, v)
        at_scale = oracles.attention_at_scale(q, k, v)
        try:
            checks.assert_close(weights, ref_weights, "weights")
            checks.assert_close(out, ref_out, "output")
        except PropertyFailure:
            rejected_without_policy += 1
        checks.assert_close(weights, ref_weights, "weights", at_scale=lambda f: at_scale(f)[1])
        checks.assert_close(out, ref_out, "output", at_scale=lambda f: at_scale(f)[0])
    assert rejected_without_policy >= 5     # the policy is what accepts them


def test_computing_in_float32_is_still_rejected_with_the_precision_hint():
    rejected = 0
    for case, size in _cases():
        q, k, v = case.tensors()
        q = q * size
        out, weights = _lesson_attention(q.float(), k.float(), v.float(), "math")
        out, weights = out.double(), weights.double()
        ref_out, ref_weights = oracles.attention(q, k, v)
        at_scale = oracles.attention_at_scale(q, k, v)
        try:
            checks.assert_close(weights, ref_weights, "weights", at_scale=lambda f: at_scale(f)[1],
                                candidates={"mask_after_softmax": ref_weights.clone()},
                                hint="an unrelated hint")
        except PropertyFailure as failure:
            rejected += 1
            assert failure.hint == checks.PRECISION_HINT
    assert rejected >= 0.5 * 60


def test_a_real_mistake_in_float64_keeps_its_own_hint():
    case = S.AttentionCase(batch=(2,), lq=3, lk=4, d_k=5, d_v=2, dtype=torch.float64, seed=1)
    q, k, v = case.tensors()
    unscaled = oracles.attention(q, k, v, scale=1.0)[1]
    with pytest.raises(PropertyFailure) as failure:
        checks.assert_close(unscaled, oracles.attention(q, k, v)[1], "weights",
                            candidates={"no_scale": unscaled},
                            at_scale=lambda f: oracles.attention_at_scale(q, k, v)(f)[1])
    assert "1/sqrt(d_k)" in failure.value.hint



@pytest.mark.parametrize("shape", [(), (1,), (5,), (2, 3), (3, 1, 4), (2, 2, 1, 3)])
def test_index_of_agrees_with_torch(shape):
    numel = math.prod(shape)
    for flat in range(numel):
        expected = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), shape))
        assert checks.index_of(flat, shape) == expected, (flat, shape)
