"""Exercise 4 · multi-head attention.

Oracles, both computed here in float64 with the submission's weights:

- the paper's section 3.2.2,
      head_h = Attention(Q W_h^Q, K W_h^K, V W_h^V),
      MultiHead(Q, K, V) = Concat(head_1, ..., head_H) W^O,
  head h using the output features h*d_k : (h+1)*d_k of W_q, W_k, W_v;
- torch.nn.MultiheadAttention(d_model, num_heads, bias=bias, batch_first=True)
  with in_proj_weight = cat(W_q, W_k, W_v) (and the biases likewise),
  out_proj = W_o, in train() mode with dropout 0, called with
  need_weights=True, average_attn_weights=False.

Head bugs hide with one head or one position (a `.view` without transpose is
then the identity), so the main properties draw 2, 4 or 8 heads, d_k > 1,
Lq and Lk > 1 and batch > 1; others draw 1 head too, masks (attn_mask,
key_padding_mask, both, neither), bias on and off, self- and
cross-attention.  When a multi-head answer is wrong but the same module is
right with one head, the hint says the heads are mixed.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from grader import hints
from grader.hidden import checks, contract, devices, oracles
from grader.hidden import strategies as S
from grader.outcomes import PropertyFailure, StudentError
from grader.sandbox.client import run_procedure

TARGET = "ex04_multi_head:MultiHeadAttention"
PROJECTIONS = ("W_q", "W_k", "W_v", "W_o")
GENERIC_HINTS = ("", "Check which dimensions you multiply and reduce over.")
MASKED_KEYS_RULE = ("Masked keys get weight 0 in every head and every query: True means NOT allowed; "
                    "attn_mask (Lq, Lk) is used as is, key_padding_mask (B, Lk) becomes (B, 1, 1, Lk); "
                    "fill the masked scores with -inf before the softmax.")


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


def _expected_names(d_model: int, bias: bool) -> dict[str, tuple]:
    names = {f"{p}.weight": (d_model, d_model) for p in PROJECTIONS}
    if bias:
        names.update({f"{p}.bias": (d_model,) for p in PROJECTIONS})
    return names


CONTRACT = "W_q, W_k, W_v, W_o, each nn.Linear(d_model, d_model, bias=bias)"


def _build(student, d_model: int, num_heads: int, bias: bool, *, values=None, dtype=None, probe=None):
    """The student's MultiHeadAttention, its contract parameters (found by name) set to `values`."""
    return contract.build(
        student._client, TARGET, [d_model, num_heads], {"bias": bias},
        expected=_expected_names(d_model, bias), values=values, dtype=dtype, probe=probe,
        owner=f"MultiHeadAttention({d_model}, {num_heads}, bias={bias})", contract=CONTRACT,
        missing_hint="Name the layers W_q, W_k, W_v, W_o, each nn.Linear(d_model, d_model, "
                     "bias=bias): the heads are slices of these, not separate layers.",
        missing_bias_hint=hints.hint("no_bias"),
        extra_bias_hint="Pass bias=bias to the four nn.Linear layers.")


def _mha(student, case):
    """The student's module for `case`, holding the case's weights (float64 when the case is)."""
    q, k, v = case.inputs()
    return _build(student, case.d_model, case.num_heads, case.bias, values=case.weights(),
                  dtype=case.dtype, probe=([q, k, v], {}))


def _run(module, case, query=None, key=None, value=None):
    """module(query, key, value, masks...) -> (output, weights), masks passed only when given."""
    q, k, v = case.inputs()
    query = q if query is None else query
    key = k if key is None else key
    value = v if value is None else value
    attn_mask, key_padding_mask = case.mask_tensors()
    kwargs = {}
    if attn_mask is not None:
        kwargs["attn_mask"] = attn_mask
    if key_padding_mask is not None:
        kwargs["key_padding_mask"] = key_padding_mask
    return checks.require_pair(module(query, key, value, **kwargs), "MultiHeadAttention.forward")


def _reference(case, **mistake):
    q, k, v = case.inputs()
    attn_mask, key_padding_mask = case.mask_tensors()
    return oracles.multi_head(q, k, v, case.weights(), case.num_heads, attn_mask,
                              key_padding_mask, **mistake)


def _mistakes(case):
    """What the usual slips would have returned on this input: (outputs, weights)."""
    D, H = case.d_model, case.num_heads
    attn_mask, key_padding_mask = case.mask_tensors()
    variants: dict[str, dict] = {}
    if H > 1:
        variants.update({
            "heads_split_without_transpose": dict(split="view", merge="view"),
            "heads_merged_without_transpose": dict(merge="view"),
            "heads_strided": dict(split="strided", merge="strided"),
            "scale_by_d_model": dict(scale=1.0 / math.sqrt(D)),
        })
        variants["heads_split_only_without_transpose"] = dict(split="view")   # merged correctly
    variants.update({
        "no_scale": dict(scale=1.0),
        "no_w_o": dict(use_w_o=False),
        "softmax_wrong_dim": dict(softmax_dim=-2),
    })
    if case.bias:
        variants["no_bias"] = dict(use_bias=False)
    if case.kind != "self" and case.lq == case.lk:
        variants["keys_from_query"] = dict(sources="qqv")
        variants["values_from_query"] = dict(sources="qkq")
    if case.kind == "cross":
        variants["values_from_key"] = dict(sources="qkk")
    if key_padding_mask is not None:
        variants["padding_mask_ignored"] = dict(use_padding=False)
        if case.lq == case.lk:
            variants["padding_mask_wrong_axis"] = dict(padding_axis="queries")
        if case.batch == H and H > 1:
            variants["padding_mask_heads"] = dict(padding_axis="heads")
    if attn_mask is not None:
        variants["attn_mask_ignored"] = dict(use_attn_mask=False)
    if attn_mask is not None or key_padding_mask is not None:
        variants["masks_inverted"] = dict(invert_masks=True)
        variants["masks_inverted_finite"] = dict(invert_masks=True, mask_fill=-1e9)
        if attn_mask is not None and key_padding_mask is not None:
            variants["masks_inverted_combined"] = dict(invert_combined=True)
            variants["masks_inverted_combined_finite"] = dict(invert_combined=True, mask_fill=-1e9)
        variants["mask_after_softmax"] = dict(mask_after_softmax=True)
        variants["mask_zero_fill"] = dict(mask_fill=0.0)
    outs, weights = {}, {}
    for key, kwargs in variants.items():
        outs[key], weights[key] = _reference(case, **kwargs)
    _, ref_weights = _reference(case)
    weights["weights_averaged"] = ref_weights.mean(dim=1)
    weights["weights_heads_flattened"] = ref_weights.reshape(-1, case.lq, case.lk)
    return outs, weights


def _assert_close(actual, expected, what, candidates, at_scale=None):
    """checks.assert_close, also naming the mistake when the answer holds NaNs
    (an inverted mask hides whole rows)."""
    if isinstance(actual, torch.Tensor) and actual.is_floating_point() and bool(torch.isnan(actual).any()):
        found = hints.diagnose(actual, candidates())
        if found:
            checks.assert_close(actual, expected, what, hint=found)
    checks.assert_close(actual, expected, what, candidates=candidates, at_scale=at_scale)


def _one_head_is_right(student, case) -> bool:
    """Does the same module, with the same weights and inputs but ONE head, give the right answer?"""
    single = case.replace(num_heads=1, d_k=case.d_model)
    try:
        module = _mha(student, single)
        out, weights = _run(module, single)
        ref_out, ref_weights = _reference(single)
        checks.assert_close(out, ref_out, "output with one head")
        checks.assert_close(weights, ref_weights, "weights with one head")
    except (PropertyFailure, StudentError):
        return False
    return True


def _heads_mixed(student, case) -> bool:
    """Wrong with several heads, right with one (checked when reporting only)."""
    return case.num_heads > 1 and _reporting() and _one_head_is_right(student, case)


def _compare(student, case, out, weights, ref_out, ref_weights, what: str) -> None:
    """output and weights equal the reference; name the mistake when they do not."""
    cache = {}

    def mistakes():
        if not cache:
            cache["value"] = _mistakes(case) if _reporting() else ({}, {})
        return cache["value"]

    def at_scale(f):     # the precision policy: a float32 scale is accepted
        return _reference(case, scale=f / math.sqrt(case.d_k))

    try:
        _assert_close(out, ref_out, f"{what} output", lambda: mistakes()[0], lambda f: at_scale(f)[0])
        _assert_close(weights, ref_weights, f"{what} weights", lambda: mistakes()[1],
                      lambda f: at_scale(f)[1])
    except PropertyFailure as exc:
        if exc.hint in GENERIC_HINTS and _heads_mixed(student, case):
            exc.hint = hints.hint("heads_mixed")
        raise


# ------------------------------------------------------------------ the contract
def test_rejects_d_model_not_divisible_by_num_heads(student):
    """MultiHeadAttention(d_model, num_heads) raises ValueError when d_model % num_heads != 0."""
    for d_model, num_heads in ((10, 3), (6, 4), (4, 8), (9, 2)):
        try:
            student.MultiHeadAttention(d_model, num_heads)
        except StudentError as exc:
            checks.assert_true(exc.type_name == "ValueError",
                               f"MultiHeadAttention({d_model}, {num_heads}) raised {exc.type_name}: "
                               f"{exc.message}; expected ValueError",
                               hint="Check `d_model % num_heads != 0` yourself and "
                                    "`raise ValueError(...)` (not assert, not a later shape error).")
            continue
        checks.fail(f"MultiHeadAttention({d_model}, {num_heads}) was accepted: {num_heads} heads "
                    f"of width {d_model} / {num_heads} are not whole; expected ValueError",
                    hint="Check `d_model % num_heads != 0` in __init__ and raise ValueError.")


def test_attributes(student):
    """num_heads, d_k = d_model // num_heads, and W_q, W_k, W_v, W_o = nn.Linear(d_model, d_model, bias=bias)."""
    for d_model, num_heads, bias in ((8, 2, True), (12, 4, False), (6, 1, True), (8, 8, False)):
        x = S.randn((2, 3, d_model), d_model + num_heads, torch.float32)
        module = _build(student, d_model, num_heads, bias, probe=([x, x, x], {}))
        for attribute, expected in (("num_heads", num_heads), ("d_k", d_model // num_heads)):
            try:
                value = module.get(attribute)
            except StudentError as exc:
                checks.fail(f"MultiHeadAttention({d_model}, {num_heads}) has no attribute "
                            f"`{attribute}` ({exc.message})",
                            hint=f"Store it in __init__: self.{attribute} = ...")
            checks.assert_true(type(value) is int and value == expected,
                               f"MultiHeadAttention({d_model}, {num_heads}).{attribute} is {value!r}, "
                               f"expected {expected}",
                               hint="d_k is the width of ONE head: d_model // num_heads (an int).")


# ------------------------------------------------------------------ the equations
@pytest.mark.weight(3)
@given(case=S.multi_head_cases(heads=(2, 4, 8), d_ks=(2, 3), min_len=2, min_batch=2, masks=("none",)))
@S.first("multi_head")
def test_matches_the_paper_equation(student, case):
    """with 2-8 heads (d_k < d_model), Lq, Lk > 1, batch > 1: Concat(head_1..head_H) W_o, head h using
    features h*d_k:(h+1)*d_k, and the weights of each head (B, H, Lq, Lk)."""
    module = _mha(student, case)
    out, weights = _run(module, case)
    ref_out, ref_weights = _reference(case)
    _compare(student, case, out, weights, ref_out, ref_weights, "MultiHeadAttention")


@pytest.mark.weight(3)
@given(case=S.multi_head_cases())
@S.first("multi_head")
@S.first("masked_multi_head")
def test_equals_torch_multihead_attention(student, case):
    """equals nn.MultiheadAttention(d_model, num_heads, bias=bias, batch_first=True) with the same weights,
    with attn_mask, key_padding_mask, both or neither; 1, 2, 4 or 8 heads; self- and cross-attention;
    float32 and float64 (a module converted with .double()), keeping the dtype."""
    module = _mha(student, case)
    out, weights = _run(module, case)
    q, k, v = case.inputs()
    attn_mask, key_padding_mask = case.mask_tensors()
    ref_out, ref_weights = oracles.torch_multi_head(q, k, v, case.weights(), case.num_heads,
                                                    attn_mask, key_padding_mask)
    _compare(student, case, out, weights, ref_out, ref_weights,
             "MultiHeadAttention vs nn.MultiheadAttention:")
    checks.assert_dtype(out, case.dtype, "output")
    checks.assert_dtype(weights, case.dtype, "weights")


@S.examples(10)
@given(case=S.multi_head_cases(heads=(2, 4), min_len=2, masks=("padding", "both")))
@S.first("masked_multi_head")
def test_masked_keys_get_exactly_zero_weight_in_every_head(student, case):
    """where attn_mask or key_padding_mask is True, every head's weight is exactly 0, and each
    query's weights still sum to 1."""
    module = _mha(student, case)
    _, weights = _run(module, case)
    attn_mask, key_padding_mask = case.mask_tensors()
    shape = (case.batch, case.num_heads, case.lq, case.lk)
    candidates = lambda: _mistakes(case)[1] if _reporting() else {}  # noqa: E731

    def diagnosis(fallback: str) -> str:
        """The mistake that reproduces these weights; else a description of the rule, never a
        guess at one mistake."""
        if not _reporting():
            return fallback
        return hints.diagnose(weights, candidates(), expected=_reference(case)[1]) or fallback
    weights = checks.require_tensor(weights, "weights")
    if tuple(weights.shape) != shape:
        checks.fail(f"weights: shape {tuple(weights.shape)}, expected {shape} (B, num_heads, Lq, Lk)",
                    hint=hints.diagnose(weights, candidates()) or hints.hint("weights_averaged"))
    full = torch.zeros(shape, dtype=torch.bool)
    if attn_mask is not None:
        full |= attn_mask[None, None]
    full |= key_padding_mask[:, None, None, :]
    w = weights.detach().cpu()
    if bool(torch.isnan(w).any()):
        checks.fail("the weights contain NaN",
                    hint=diagnosis(MASKED_KEYS_RULE))
    wrong = full & (w != 0)
    if bool(wrong.any()):
        index = tuple(int(i) for i in wrong.nonzero()[0])
        checks.fail(f"a masked key gets weight {w[index].item():.6g} at (batch, head, query, key) = "
                    f"{index}; masked keys must get exactly 0",
                    hint=diagnosis(MASKED_KEYS_RULE))
    sums = w.double().sum(-1)
    checks.assert_close(sums, torch.ones_like(sums), "the sum of each query's weights over the keys",
                        atol=1e-4, rtol=0,
                        hint=diagnosis(MASKED_KEYS_RULE))


@S.examples(10)
@given(case=S.multi_head_cases(heads=(2, 4), min_len=2, kinds=("self",), masks=("attn",)),
       data=st.data())
def test_causal_self_attention_does_not_see_the_future(student, case, data):
    """self-attention with a causal attn_mask: the outputs at positions 0..t do not change when the
    tokens after t change."""
    case = case.replace(mask_style="causal")
    module = _mha(student, case)
    x, _, _ = case.inputs()
    t = data.draw(st.integers(0, case.lq - 2), label="t")
    later = torch.arange(case.lq) > t
    x2 = torch.where(later[None, :, None], S.randn(x.shape, case.seed + 7, x.dtype, 3.0), x)
    out, _ = _run(module, case, x, x, x)
    out2, _ = _run(module, case, x2, x2, x2)
    out = checks.require_tensor(out, "output")
    checks.assert_shape(out2, out.shape, "output")
    try:
        checks.assert_close(out2[:, : t + 1], out[:, : t + 1],
                            f"the outputs at positions 0..{t} when the tokens after position {t} change",
                            hint="attn_mask (Lq, Lk) is True where attention is NOT allowed: fill "
                                 "those scores with -inf in every head, before the softmax.")
    except PropertyFailure as exc:
        if _heads_mixed(student, case):   # the reshape mixes positions, whatever the mask
            exc.hint = hints.hint("heads_mixed")
        raise


def test_runs_on_the_inputs_device(ctx, student):
    """with the module and its inputs and masks on another device, forward runs there: the combined
    mask and every constant are built on the input's device (a GPU, or "meta" on a CPU-only machine)."""
    device = devices.other_device(ctx)
    case = S.MultiHeadCase(batch=2, lq=3, lk=4, num_heads=2, d_k=3, bias=True, kind="cross",
                           masks="both", mask_style="random", dtype=torch.float32, seed=9)
    module = _build(student, case.d_model, case.num_heads, case.bias)
    module.call("to", device)
    q, k, v = (t.to(device) for t in case.inputs())
    attn_mask, key_padding_mask = (m.to(device) for m in case.mask_tensors())
    what = f"MultiHeadAttention with its inputs and masks on {device.type!r}"
    result = devices.call_on_device(lambda: module(q, k, v, attn_mask=attn_mask,
                                                   key_padding_mask=key_padding_mask), device, what)
    if result is None:
        return
    out, weights = checks.require_pair(result, "MultiHeadAttention.forward")
    devices.assert_on(out, device, "the output")
    devices.assert_on(weights, device, "the weights")


def test_gradients_reach_every_projection(ctx, student):
    """the output is differentiable with respect to the inputs and W_q, W_k, W_v, W_o (weights and biases)."""
    case = S.MultiHeadCase(batch=2, lq=3, lk=4, num_heads=2, d_k=3, bias=True, kind="cross",
                           masks="both", mask_style="random", dtype=torch.float64, seed=5)
    module = _mha(student, case)
    q, k, v = case.inputs()
    attn_mask, key_padding_mask = case.mask_tensors()
    out, grads, params = run_procedure(ctx.client, "heads:gradients", module, [q, k, v],
                                       {"attn_mask": attn_mask, "key_padding_mask": key_padding_mask},
                                       names=sorted(_expected_names(case.d_model, case.bias)))
    ref_out, _ = _reference(case)
    _assert_close(out, ref_out, "the output (before its gradients are checked)",
                  lambda: _mistakes(case)[0], lambda f: _reference(case, scale=f / math.sqrt(case.d_k))[0])
    # The reference: the same computation through nn.MultiheadAttention, differentiated.
    mha = oracles.torch_multi_head_module(case.weights(), case.num_heads)
    inputs = [t.clone().requires_grad_(True) for t in (q, k, v)]
    ref, _ = mha(*inputs, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False)
    projection = torch.randn(ref.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    (ref * projection).sum().backward()
    d = case.d_model
    state = {"W_o.weight": mha.out_proj.weight.grad, "W_o.bias": mha.out_proj.bias.grad}
    for i, name in enumerate(("W_q", "W_k", "W_v")):
        state[f"{name}.weight"] = mha.in_proj_weight.grad[i * d:(i + 1) * d]
        state[f"{name}.bias"] = mha.in_proj_bias.grad[i * d:(i + 1) * d]
    hint = "Do not detach, use .data, torch.no_grad() or numpy inside forward."
    for name, got, ref in zip(("query", "key", "value"), grads, inputs):
        checks.assert_true(got is not None, f"no gradient reaches {name}", hint=hint)
        checks.assert_close(got, ref.grad, f"the gradient with respect to {name}",
                            at_scale=lambda f, name=name: _gradients_at_scale(case, projection, f)[name])
    for name in sorted(state):
        checks.assert_true(params.get(name) is not None, f"no gradient reaches {name}", hint=hint)
        checks.assert_close(params[name], state[name], f"the gradient with respect to {name}",
                            at_scale=lambda f, name=name: _gradients_at_scale(case, projection, f)[name])


def _gradients_at_scale(case, projection, factor: float) -> dict:
    """{input or parameter name: gradient} of the paper's multi-head attention in float64 with the
    scale 1/sqrt(d_k) times `factor` (the precision policy's `at_scale`)."""
    w = {name: t.clone().requires_grad_(True) for name, t in case.weights().items()}
    inputs = [t.clone().requires_grad_(True) for t in case.inputs()]
    attn_mask, key_padding_mask = case.mask_tensors()
    B, Lq, D = inputs[0].shape
    H, d_k = case.num_heads, case.d_k

    def linear(x, name):
        return x @ w[f"{name}.weight"].T + (w[f"{name}.bias"] if case.bias else 0.0)

    def split(x):
        return x.reshape(B, x.shape[1], H, d_k).transpose(1, 2)

    q, k, v = (split(linear(x, name)) for x, name in zip(inputs, ("W_q", "W_k", "W_v")))
    scores = q @ k.transpose(-2, -1) * (factor / math.sqrt(d_k))
    mask = torch.zeros(scores.shape, dtype=torch.bool)
    if attn_mask is not None:
        mask = mask | attn_mask
    if key_padding_mask is not None:
        mask = mask | key_padding_mask[:, None, None, :]
    heads = torch.softmax(scores.masked_fill(mask, float("-inf")), -1) @ v
    out = linear(heads.transpose(1, 2).reshape(B, Lq, D), "W_o")
    (out * projection).sum().backward()
    return {"query": inputs[0].grad, "key": inputs[1].grad, "value": inputs[2].grad,
            **{name: t.grad for name, t in w.items()}}
