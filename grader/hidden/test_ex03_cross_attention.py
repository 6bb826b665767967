"""Exercise 3 · cross-attention (encoder-decoder attention).

Oracle: the paper's attention with its three inputs kept apart,

    Attention(x_q W_qᵀ, x_k W_kᵀ, x_v W_vᵀ) = softmax(Q Kᵀ / √d_k + M) V,

computed here in float64 (M = -inf where the bool mask is True), and
PyTorch's nn.MultiheadAttention with one head, no bias and an identity output
projection called as encoder-decoder attention, (decoder states, memory,
memory).  The tests pass three DIFFERENT tensors x_q, x_k, x_v, often of
different lengths Lq != Lk: a module that takes its keys from x_q or its
values from x_k cannot hide.  Each property below names the mistake it is
there to catch.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from grader import hints
from grader.hidden import checks, contract, oracles
from grader.hidden import strategies as S
from grader.sandbox.client import run_procedure

PARAMETERS = {"W_q.weight", "W_k.weight", "W_v.weight"}


# ------------------------------------------------------------------ helpers
def _reporting() -> bool:
    """True outside hypothesis and on its final replay of the shrunk failing
    example: naming the mistake costs many oracle calls, so it is done once,
    not on every example tried while shrinking."""
    try:
        from hypothesis.control import current_build_context

        return bool(current_build_context().is_final)
    except Exception:  # noqa: BLE001 - not inside a hypothesis test
        return True


def _attention(student, case):
    """The student's Attention(d_model) holding the case's weights (float64 when the case is)."""
    d = case.d_model
    return contract.build(
        student._client, "ex03_cross_attention:Attention", [d],
        expected={name: (d, d) for name in PARAMETERS}, values=case.weights(),
        dtype=case.dtype, probe=(list(case.inputs()), {}), owner="Attention",
        contract="W_q, W_k, W_v, each nn.Linear(d_model, d_model, bias=False)",
        missing_hint="Name the layers W_q, W_k, W_v and create them with bias=False.")


def _reference(case, x_q, x_k, x_v, mask=None, **mistake):
    w = case.weights()
    out, _ = oracles.cross_attention(x_q, x_k, x_v, w["W_q.weight"], w["W_k.weight"],
                                     w["W_v.weight"], mask, **mistake)
    return out


def _mistakes(case, x_q, x_k, x_v, mask=None):
    """What the usual slips would have returned on this input (only those of
    a computable shape: keys taken from x_q need Lq == Lk)."""
    if not _reporting():
        return {}
    ref = lambda **kw: _reference(case, x_q, x_k, x_v, mask, **kw)  # noqa: E731
    found = {}
    if case.lq == case.lk:
        found["keys_from_x_q"] = ref(sources="qqv")
        found["values_from_x_q"] = ref(sources="qkq")
        found["queries_from_x_k"] = ref(sources="kkv")
    else:
        found["queries_from_x_k"] = _reference(case, x_k, x_k, x_v, None)
    found["values_from_x_k"] = ref(sources="qkk")
    found["keys_values_swapped"] = ref(sources="qvk")
    found["no_scale"] = ref(scale=1.0)
    found["scale_by_dk"] = ref(scale=1.0 / case.d_model)
    found["scale_by_length"] = ref(scale=1.0 / math.sqrt(case.lk))
    found["softmax_wrong_dim"] = ref(softmax_dim=-2)
    w = case.weights()
    found["projections_swapped"] = oracles.cross_attention(
        x_q, x_k, x_v, w["W_k.weight"], w["W_q.weight"], w["W_v.weight"], mask)[0]
    if mask is not None:
        found["mask_inverted"] = _reference(case, x_q, x_k, x_v, ~mask)
        found["mask_inverted_finite"] = _reference(case, x_q, x_k, x_v, ~mask, mask_fill=-1e9)
        found["mask_after_softmax"] = ref(mask_after_softmax=True)
        found["mask_zero_fill"] = ref(mask_fill=0.0)
        found["mask_ignored"] = _reference(case, x_q, x_k, x_v, None)
        # scores + mask: the bool mask added as 0/1.
        q = x_q.double() @ w["W_q.weight"].double().T
        k = x_k.double() @ w["W_k.weight"].double().T
        v = x_v.double() @ w["W_v.weight"].double().T
        scores = q @ k.transpose(-2, -1) / math.sqrt(case.d_model) + mask.double()
        found["mask_added"] = torch.softmax(scores, -1) @ v
    return found


def _at_scale(case, x_q, x_k, x_v, mask=None):
    """f -> the reference with its scale times f (checks' precision policy)."""
    return lambda f: _reference(case, x_q, x_k, x_v, mask, scale=f / math.sqrt(case.d_model))


def _assert_close(actual, expected, what, candidates, at_scale=None):
    """checks.assert_close, also naming the mistake when the answer holds NaNs
    (an inverted mask can hide whole rows)."""
    if isinstance(actual, torch.Tensor) and actual.is_floating_point() and bool(torch.isnan(actual).any()):
        found = hints.diagnose(actual, candidates())
        if found:
            checks.assert_close(actual, expected, what, hint=found)
    checks.assert_close(actual, expected, what, candidates=candidates, at_scale=at_scale)


# ------------------------------------------------------------------ properties
@pytest.mark.weight(3)
@given(case=S.cross_attention_cases())
@S.first("cross_attention")
def test_matches_the_equation(student, case):
    """Attention(x_q, x_k, x_v) = softmax(W_q(x_q) W_k(x_k)ᵀ / sqrt(d_k)) W_v(x_v): shape (B, Lq, D), one
    vector per QUERY, in the inputs' dtype, with Lq != Lk, batch > 1."""
    module = _attention(student, case)
    x_q, x_k, x_v = case.inputs()
    out = module(x_q, x_k, x_v)
    _assert_close(out, _reference(case, x_q, x_k, x_v), "Attention output",
                  lambda: _mistakes(case, x_q, x_k, x_v), _at_scale(case, x_q, x_k, x_v))
    checks.assert_dtype(out, case.dtype, "Attention output")


@pytest.mark.weight(2)
@given(case=S.cross_attention_cases(square=True, min_len=2))
@S.first("square_cross_attention")
def test_keys_come_from_x_k_and_values_from_x_v(student, case):
    """with three different inputs of one length, queries come from x_q, keys from x_k, values from x_v."""
    module = _attention(student, case)
    x_q, x_k, x_v = case.inputs()
    out = module(x_q, x_k, x_v)
    _assert_close(out, _reference(case, x_q, x_k, x_v),
                  "Attention output (x_q, x_k and x_v three different tensors)",
                  lambda: _mistakes(case, x_q, x_k, x_v), _at_scale(case, x_q, x_k, x_v))


@pytest.mark.weight(2)
@given(data=st.data(), case=S.cross_attention_cases(min_len=2))
def test_honours_the_mask(student, case, data):
    """with a bool mask (True = NOT allowed) broadcastable to (B, Lq, Lk) — (Lq, Lk), (B, 1, Lk) or
    (B, Lq, Lk) — the output is masked attention: masked keys get no weight."""
    spec = data.draw(S.masks(case.attention_case()), label="mask")
    module = _attention(student, case)
    x_q, x_k, x_v = case.inputs()
    mask = spec.build(case.attention_case())
    out = module(x_q, x_k, x_v, mask)
    _assert_close(out, _reference(case, x_q, x_k, x_v, mask), "Attention output with a mask",
                  lambda: _mistakes(case, x_q, x_k, x_v, mask), _at_scale(case, x_q, x_k, x_v, mask))


@S.examples(10)
@given(case=S.cross_attention_cases(min_len=2), noise_seed=S.seeds())
@S.first("cross_attention", noise_seed=5)
def test_padded_memory_does_not_matter(student, case, noise_seed):
    """changing the keys and values at padded memory positions (key padding mask) changes nothing."""
    spec = S.MaskSpec("padding", "keys", case.seed)
    mask = spec.build(case.attention_case())                        # (B, 1, Lk)
    padded = mask[:, 0, :]                                          # (B, Lk)
    module = _attention(student, case)
    x_q, x_k, x_v = case.inputs()
    noise_k = S.randn(x_k.shape, noise_seed, x_k.dtype, 3.0) + 2
    noise_v = S.randn(x_v.shape, noise_seed + 1, x_v.dtype, 3.0) - 2
    x_k2 = torch.where(padded.unsqueeze(-1), noise_k, x_k)
    x_v2 = torch.where(padded.unsqueeze(-1), noise_v, x_v)
    out = checks.require_tensor(module(x_q, x_k, x_v, mask), "Attention output")
    out2 = module(x_q, x_k2, x_v2, mask)
    checks.assert_shape(out2, out.shape, "Attention output")
    checks.assert_close(out2, out, "the output before and after changing the padded keys and values",
                        candidates=lambda: {},
                        hint="A masked key must have no influence at all: fill the masked scores with "
                             "-inf before the softmax (True = NOT allowed; not 0, not after the softmax).")


@S.examples(10)
@given(case=S.cross_attention_cases(min_len=2), data=st.data())
def test_each_query_is_answered_on_its_own(student, case, data):
    """permuting the queries permutes the output rows; shuffling the (key, value) pairs together changes
    nothing: which query is which depends on x_q alone."""
    module = _attention(student, case)
    x_q, x_k, x_v = case.inputs()
    out = checks.require_tensor(module(x_q, x_k, x_v), "Attention output")
    q_perm = torch.tensor(data.draw(st.permutations(range(case.lq)), label="query order"))
    kv_perm = torch.tensor(data.draw(st.permutations(range(case.lk)), label="key order"))
    checks.assert_shape(out, (case.batch, case.lq, case.d_model), "Attention output")
    checks.assert_close(module(x_q[:, q_perm], x_k, x_v), out[:, q_perm],
                        "the output of the permuted queries",
                        hint="Each query is answered on its own: softmax over the keys (dim=-1), "
                             "never over the queries.")
    checks.assert_close(module(x_q, x_k[:, kv_perm], x_v[:, kv_perm]), out,
                        "the output with the (key, value) pairs shuffled together",
                        hint="Keys and values must stay paired (key j with value j), and the output "
                             "rows follow the queries, not the keys.")


@S.examples(10)
@given(case=S.cross_attention_cases(dtype=torch.float64, min_len=2), use_mask=st.booleans())
def test_encoder_decoder_attention_equals_torch(student, case, use_mask):
    """Attention(d)(decoder_states, memory, memory) equals nn.MultiheadAttention (one head, no bias,
    identity output projection) with the same attn_mask."""
    module = _attention(student, case)
    decoder, memory, _ = case.inputs()
    mask = S.MaskSpec("random", "shared", case.seed).build(case.attention_case()) if use_mask else None
    w = case.weights()
    ref = oracles.torch_single_head(decoder, memory, w["W_q.weight"], w["W_k.weight"],
                                    w["W_v.weight"], mask=mask)
    out = module(decoder, memory, memory) if mask is None else module(decoder, memory, memory, mask)
    checks.assert_close(out, ref, "Attention(decoder, memory, memory) vs nn.MultiheadAttention",
                        candidates=lambda: _mistakes(case, decoder, memory, memory, mask),
                        at_scale=_at_scale(case, decoder, memory, memory, mask))


def test_gradients_reach_every_input_and_weight(ctx, student):
    """the output is differentiable with respect to x_q, x_k, x_v and W_q, W_k, W_v (no detach, no .data)."""
    case = S.CrossAttentionCase(batch=2, lq=3, lk=4, d_model=5, dtype=torch.float64, seed=7)
    module = _attention(student, case)
    x_q, x_k, x_v = case.inputs()
    out, grads, params = run_procedure(ctx.client, "common:gradients", module, [x_q, x_k, x_v],
                                       names=sorted(PARAMETERS))
    _assert_close(out, _reference(case, x_q, x_k, x_v), "the output (before its gradients are checked)",
                  lambda: _mistakes(case, x_q, x_k, x_v), _at_scale(case, x_q, x_k, x_v))
    projection = torch.randn((case.batch, case.lq, case.d_model),
                             generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def reference_grads(factor: float = 1.0):
        """({input: grad}, {weight: grad}) of the equation, its scale times `factor`."""
        w = {name: t.clone().requires_grad_(True) for name, t in case.weights().items()}
        refs = [t.clone().requires_grad_(True) for t in (x_q, x_k, x_v)]
        q = refs[0] @ w["W_q.weight"].T
        k = refs[1] @ w["W_k.weight"].T
        v = refs[2] @ w["W_v.weight"].T
        scores = q @ k.transpose(-2, -1) * (factor / math.sqrt(case.d_model))
        (torch.softmax(scores, -1) @ v * projection).sum().backward()
        return ({n: t.grad for n, t in zip(("x_q", "x_k", "x_v"), refs)},
                {n: t.grad for n, t in w.items()})

    ref_inputs, ref_weights = reference_grads()
    hint = "Do not detach, use .data, torch.no_grad() or numpy inside forward."
    for i, (name, got) in enumerate(zip(("x_q", "x_k", "x_v"), grads)):
        checks.assert_true(got is not None, f"no gradient reaches {name}", hint=hint)
        checks.assert_close(got, ref_inputs[name], f"the gradient with respect to {name}",
                            at_scale=lambda f, name=name: reference_grads(f)[0][name])
    for name in sorted(PARAMETERS):
        checks.assert_true(params.get(name) is not None, f"no gradient reaches {name}", hint=hint)
        checks.assert_close(params[name], ref_weights[name], f"the gradient with respect to {name}",
                            at_scale=lambda f, name=name: reference_grads(f)[1][name])
