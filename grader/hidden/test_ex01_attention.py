"""Exercise 1 · scaled dot-product attention.

Oracle: the paper's equation (3), Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V,
computed here in float64, and PyTorch's nn.MultiheadAttention with one head,
no bias and an identity output projection (the same function as SelfAttention).
Each property below names the mistake it is there to catch.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from grader.hidden import checks, contract, oracles
from grader.hidden import strategies as S


def _mistakes(q, k, v):
    """What the usual slips would have returned on this input: (outputs, weights)."""
    d_k, d_v = q.shape[-1], v.shape[-1]
    variants = {
        "no_scale": dict(scale=1.0),
        "scale_by_dk": dict(scale=1.0 / d_k),
        "scale_by_dv": dict(scale=1.0 / math.sqrt(d_v)),
        "scale_multiplied": dict(scale=math.sqrt(d_k)),
        "softmax_wrong_dim": dict(softmax_dim=-2),
        "no_softmax": dict(apply_softmax=False),
    }
    outs, weights = {}, {}
    for key, kwargs in variants.items():
        o, w = oracles.attention(q, k, v, **kwargs)
        outs[key], weights[key] = o, w
    o, w = oracles.attention(q, k, v)
    weights["weights_transposed"] = w.transpose(-2, -1)
    outs["return_order_swapped"], weights["return_order_swapped"] = w, o
    return outs, weights


@pytest.mark.weight(3)
@given(case=S.attention_cases())
@S.first("attention")
def test_matches_the_equation(student, case):
    """output and weights equal softmax(q kᵀ / sqrt(d_k)) v, for any batch dims, Lq != Lk, d_k != d_v."""
    q, k, v = case.tensors()
    result = checks.require_pair(student.scaled_dot_product_attention(q, k, v),
                                 "scaled_dot_product_attention")
    out, weights = result
    ref_out, ref_weights = oracles.attention(q, k, v)
    if (isinstance(out, torch.Tensor) and isinstance(weights, torch.Tensor)
            and out.shape == ref_weights.shape and weights.shape == ref_out.shape
            and ref_out.shape != ref_weights.shape):
        checks.fail(f"returned a tensor of shape {tuple(out.shape)} (the weights' shape) first and "
                    f"{tuple(weights.shape)} (the output's shape) second",
                    hint="Return them in the contract's order: `return output, weights`.")
    at_scale = oracles.attention_at_scale(q, k, v)
    checks.assert_close(weights, ref_weights, "weights", candidates=lambda: _mistakes(q, k, v)[1],
                        at_scale=lambda f: at_scale(f)[1])
    checks.assert_close(out, ref_out, "output", candidates=lambda: _mistakes(q, k, v)[0],
                        at_scale=lambda f: at_scale(f)[0])


@given(case=S.attention_cases())
@S.first("attention")
def test_weights_are_probabilities(student, case):
    """each query's weights are non-negative and sum to 1 over the keys."""
    q, k, v = case.tensors()
    _, weights = checks.require_pair(student.scaled_dot_product_attention(q, k, v),
                                     "scaled_dot_product_attention")
    checks.assert_shape(weights, (*case.batch, case.lq, case.lk), "weights")
    checks.assert_true(bool((weights >= 0).all()), "some attention weights are negative",
                       hint="Weights come out of a softmax; check it is applied.")
    sums = weights.double().sum(-1)
    checks.assert_close(sums, torch.ones_like(sums), "the sum of each query's weights over the keys",
                        atol=1e-4, rtol=0,
                        hint="Softmax over the last dimension (the keys): dim=-1.")


@S.examples(6)
@given(case=S.attention_cases(min_len=2), size=st.sampled_from(S.LARGE_LOGITS))
@example(case=S.AttentionCase(batch=(2,), lq=3, lk=4, d_k=5, d_v=2, dtype=torch.float32, seed=1), size=300.0)
@example(case=S.AttentionCase(batch=(), lq=2, lk=3, d_k=3, d_v=2, dtype=torch.float64, seed=2), size=300.0)
def test_large_scores_do_not_overflow(student, case, size):
    """with scores of size ~1e3 (q scaled up) the weights are still finite probabilities that match
    the equation: a hand-written softmax must subtract each row's maximum before exp."""
    q, k, v = case.tensors()
    q = q * size
    out, weights = checks.require_pair(student.scaled_dot_product_attention(q, k, v),
                                       "scaled_dot_product_attention")
    ref_out, ref_weights = oracles.attention(q, k, v)
    at_scale = oracles.attention_at_scale(q, k, v)   # a float32 scale (the course's) is fine
    checks.assert_large_logits_close(weights, ref_weights, "weights with large scores",
                                     at_scale=lambda f: at_scale(f)[1])
    checks.assert_large_logits_close(out, ref_out, "output with large scores",
                                     at_scale=lambda f: at_scale(f)[0])


@given(case=S.attention_cases(), dtype=st.sampled_from(S.FLOAT_DTYPES))
def test_keeps_the_input_dtype(student, case, dtype):
    """float32 in, float32 out; float64 in, float64 out (output and weights)."""
    q, k, v = (t.to(dtype) for t in case.tensors())
    out, weights = checks.require_pair(student.scaled_dot_product_attention(q, k, v),
                                       "scaled_dot_product_attention")
    checks.assert_dtype(out, dtype, "output")
    checks.assert_dtype(weights, dtype, "weights")


@given(case=S.attention_cases(min_len=2), data=st.data())
def test_keys_and_values_are_a_set(student, case, data):
    """shuffling the (key, value) pairs together changes nothing: attention has no notion of order."""
    q, k, v = case.tensors()
    perm = torch.tensor(data.draw(st.permutations(range(case.lk)), label="key order"))
    out, _ = checks.require_pair(student.scaled_dot_product_attention(q, k, v), "scaled_dot_product_attention")
    out_perm, _ = checks.require_pair(
        student.scaled_dot_product_attention(q, k[..., perm, :], v[..., perm, :]),
        "scaled_dot_product_attention")
    checks.assert_close(out_perm, out, "output with the (key, value) pairs shuffled",
                        hint="Keys and values must stay paired: key j goes with value j.")


def test_gradients_reach_q_k_and_v(ctx, student):
    """the output is differentiable with respect to q, k and v (no detach, no .data, no numpy)."""
    from grader.sandbox.client import run_procedure

    case = S.AttentionCase(batch=(2,), lq=3, lk=4, d_k=5, d_v=2, dtype=torch.float64, seed=7)
    q, k, v = case.tensors()
    _, grads, _ = run_procedure(ctx.client, "common:gradients",
                                "ex01_attention:scaled_dot_product_attention", [q, k, v], output_index=0)
    projection = torch.randn((*case.batch, case.lq, case.d_v), generator=torch.Generator().manual_seed(0),
                             dtype=torch.float64)

    def reference_grads(factor: float = 1.0):
        """The gradients of the equation, its scale times `factor` (the precision policy)."""
        ref_q, ref_k, ref_v = (t.clone().requires_grad_(True) for t in (q, k, v))
        scores = ref_q @ ref_k.transpose(-2, -1) * (factor / math.sqrt(case.d_k))
        (torch.softmax(scores, -1) @ ref_v * projection).sum().backward()
        return ref_q.grad, ref_k.grad, ref_v.grad

    for i, (name, got, ref) in enumerate(zip("qkv", grads, reference_grads())):
        checks.assert_true(got is not None, f"no gradient reaches {name}",
                           hint="Do not detach, use .data, or go through numpy inside attention.")
        checks.assert_close(got, ref, f"the gradient with respect to {name}",
                            at_scale=lambda f, i=i: reference_grads(f)[i])


# ---------------------------------------------------------------- SelfAttention
def _projections(w):
    return w["W_q.weight"], w["W_k.weight"], w["W_v.weight"]


def _self_attention(student, case):
    """The student's SelfAttention(d_model) holding the case's weights (float64 when the case is)."""
    d = case.d_model
    return contract.build(
        student._client, "ex01_attention:SelfAttention", [d],
        expected={name: (d, d) for name in case.weights()}, values=case.weights(),
        dtype=case.dtype, probe=([case.input()], {}), owner="SelfAttention",
        contract="W_q, W_k, W_v, each nn.Linear(d_model, d_model, bias=False)",
        missing_hint="Name the layers W_q, W_k, W_v and create them with bias=False.")


@pytest.mark.weight(2)
@given(case=S.self_attention_cases())
@S.first("self_attention")
def test_self_attention_matches_the_equation(student, case):
    """SelfAttention(x) is attention of W_q(x), W_k(x), W_v(x), for any leading dims."""
    module = _self_attention(student, case)
    x = case.input()
    out = module(x)
    w = case.weights()
    ref, _ = oracles.self_attention(x, w["W_q.weight"], w["W_k.weight"], w["W_v.weight"])
    candidates = lambda: {  # noqa: E731
        "projections_swapped": oracles.self_attention(x, w["W_k.weight"], w["W_q.weight"], w["W_v.weight"])[0],
        "no_scale": oracles.self_attention(x, w["W_q.weight"], w["W_k.weight"], w["W_v.weight"], scale=1.0)[0],
        "softmax_wrong_dim": oracles.self_attention(x, w["W_q.weight"], w["W_k.weight"], w["W_v.weight"],
                                                    softmax_dim=-2)[0],
    }
    checks.assert_close(out, ref, "SelfAttention output", candidates=candidates,
                        at_scale=oracles.self_attention_at_scale(x, *_projections(w)))
    checks.assert_dtype(out, case.dtype, "SelfAttention output")


@given(case=S.self_attention_cases(max_batch_dims=1, dtype=torch.float64))
def test_self_attention_equals_torch_multihead_attention(student, case):
    """equals nn.MultiheadAttention with one head, no bias, identity output projection."""
    module = _self_attention(student, case)
    x = case.input()
    if x.dim() == 2:
        x = x.unsqueeze(0)
    w = case.weights()
    ref = oracles.torch_single_head(x, x, w["W_q.weight"], w["W_k.weight"], w["W_v.weight"])
    checks.assert_close(module(x), ref, "SelfAttention output vs nn.MultiheadAttention(num_heads=1)",
                        at_scale=oracles.self_attention_at_scale(x, *_projections(w)))


@given(case=S.self_attention_cases(min_len=2), data=st.data())
def test_self_attention_is_permutation_equivariant(student, case, data):
    """permuting the input tokens permutes the output tokens the same way."""
    module = _self_attention(student, case)
    x = case.input()
    perm = torch.tensor(data.draw(st.permutations(range(case.length)), label="token order"))
    out = checks.require_tensor(module(x), "SelfAttention output")
    checks.assert_close(module(x[..., perm, :]), out[..., perm, :], "output of the permuted input",
                        hint="Self-attention has no notion of position: every token is treated alike.")
