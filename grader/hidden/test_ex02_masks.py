"""Exercise 2 · causal and padding masks, masked attention.

Oracle: the masks themselves (`triu(ones(L, L), diagonal=1)` and
`arange(max_len) >= lengths[:, None]`), the paper's masked attention

    softmax(q kᵀ / √d_k + M) v,    M = -inf where the bool mask is True,

computed here in float64, and PyTorch's nn.MultiheadAttention with one head,
no bias and an identity output projection, called with the same bool
`attn_mask` (True = NOT allowed, the course's convention).
Each property below names the mistake it is there to catch.

Masks must be built on the input's device.  On a GPU the device properties
use it; on a CPU-only machine (CI) they use the "meta" device, whose tensors
have a shape and a dtype but no data: a mask built on the CPU shows up there
just as on a GPU, and correct code that needs the values (`.item()`, a loop
over `lengths`) is not penalised.
"""

from __future__ import annotations

import math
import weakref

import pytest
import torch
from hypothesis import assume, example, given
from hypothesis import strategies as st

from grader import hints
from grader.hidden import checks, contract, devices, oracles
from grader.hidden import strategies as S
from grader.outcomes import StudentError

CAUSAL_SIZES = (4, 1, 2, 3, 5, 6, 7)   # 4 first: the mask a failure message shows
NAN_HINT = ("A NaN means a whole row was masked (check the convention: True = NOT allowed), or "
            "0 * inf (mask * float('-inf')): fill the masked scores with masked_fill or torch.where.")
SCORES_HINT = ("Fill the masked scores with -inf (or torch.finfo(dtype).min) BEFORE the softmax, "
               "where the mask is True (True = NOT allowed).")


# ------------------------------------------------------------------ helpers


def _mask_device(ctx) -> torch.device:
    return devices.other_device(ctx)


def _call_on_device(call, device: torch.device, what: str):
    return devices.call_on_device(call, device, what, hint=hints.hint("mask_wrong_device"))


def _check_device_mask(mask, device: torch.device, shape, what: str) -> None:
    mask = checks.require_tensor(mask, what)
    checks.assert_true(mask.device.type == device.type,
                       f"{what} returned a mask on {mask.device}, not on {device}",
                       hint=hints.hint("mask_wrong_device"))
    if tuple(mask.shape) != tuple(shape):
        transposed = tuple(mask.shape) == tuple(reversed(shape)) and shape[0] != shape[1]
        checks.fail(f"{what}: shape {tuple(mask.shape)}, expected {tuple(shape)}",
                    hint=hints.hint("padding_transposed") if transposed else "")
    if mask.dtype != torch.bool:
        checks.fail(f"{what}: dtype {mask.dtype}, expected torch.bool", hint=hints.hint("mask_not_bool"))


def _check_mask(actual, expected: torch.Tensor, what: str, candidates: dict[str, torch.Tensor]) -> None:
    """`actual` is exactly the bool mask `expected`; name the usual mistake if not."""
    actual = checks.require_tensor(actual, what)
    if actual.dtype != torch.bool:
        checks.fail(f"{what}: dtype {actual.dtype}, expected torch.bool", hint=hints.hint("mask_not_bool"))
    found = ""
    for key, candidate in candidates.items():
        if tuple(candidate.shape) == tuple(actual.shape) and torch.equal(actual.cpu(), candidate):
            found = hints.hint(key)
            break
    checks.assert_equal(actual, expected, what, hint=found)


def _full(mask: torch.Tensor, shape) -> torch.Tensor:
    return mask.to("cpu").expand(*shape)


def _masked_mistakes(q, k, v, mask):
    """What the usual slips would have returned on this input: (outputs, weights)."""
    d_k, d_v = q.shape[-1], v.shape[-1]
    variants = {
        "mask_inverted": dict(mask=~mask),
        "mask_after_softmax": dict(mask=mask, mask_after_softmax=True),
        "mask_zero_fill": dict(mask=mask, mask_fill=0.0),
        "mask_ignored": dict(mask=None),
        "no_scale": dict(mask=mask, scale=1.0),
        "scale_by_dk": dict(mask=mask, scale=1.0 / d_k),
        "scale_by_dv": dict(mask=mask, scale=1.0 / math.sqrt(d_v)),
        "softmax_wrong_dim": dict(mask=mask, softmax_dim=-2),
    }
    outs, weights = {}, {}
    for key, kwargs in variants.items():
        m = kwargs.pop("mask")
        outs[key], weights[key] = oracles.attention(q, k, v, m, **kwargs)
    # scores + mask: the bool mask added as 0/1 instead of 0/-inf.
    q64, k64, v64 = (t.detach().to("cpu", torch.float64) for t in (q, k, v))
    scores = q64 @ k64.transpose(-2, -1) / math.sqrt(d_k) + mask.to("cpu", torch.float64)
    weights["mask_added"] = torch.softmax(scores, -1)
    outs["mask_added"] = weights["mask_added"] @ v64
    if q.shape[-2] == k.shape[-2]:
        o, w = oracles.attention(q, k, v, oracles.causal_mask(q.shape[-2]))
        outs["always_causal"], weights["always_causal"] = o, w
    return outs, weights


def _assert_close(actual, expected, what, candidates, at_scale=None):
    """checks.assert_close, also naming the mistake when the answer holds NaNs
    (an inverted mask masks whole rows)."""
    if isinstance(actual, torch.Tensor) and actual.is_floating_point() and bool(torch.isnan(actual).any()):
        checks.assert_close(actual, expected, what, hint=hints.diagnose(actual, candidates()) or NAN_HINT)
    checks.assert_close(actual, expected, what, candidates=candidates, at_scale=at_scale)


def _no_nan(value, what: str) -> None:
    if isinstance(value, torch.Tensor) and value.is_floating_point() and bool(torch.isnan(value).any()):
        index = tuple(int(i) for i in torch.isnan(value).nonzero()[0])
        checks.fail(f"{what}: NaN at index {index}", hint=NAN_HINT)


def _masked_attention(student, q, k, v, mask):
    return checks.require_pair(student.masked_attention(q, k, v, mask), "masked_attention")


# ------------------------------------------------------------------ causal_mask
@pytest.mark.weight(2)
def test_causal_mask_is_true_strictly_above_the_diagonal(student):
    """causal_mask(L) is the bool (L, L) mask True exactly where key j > query i."""
    for size in CAUSAL_SIZES:
        expected = oracles.causal_mask(size)
        ones = torch.ones(size, size, dtype=torch.bool)
        _check_mask(student.causal_mask(size), expected, f"causal_mask({size})", {
            "causal_diagonal": torch.triu(ones, diagonal=0),
            "causal_lower": torch.tril(ones, diagonal=-1),
            "mask_inverted": torch.tril(ones, diagonal=0),
        })


def test_causal_mask_is_built_on_the_requested_device(student, ctx):
    """causal_mask(L, device=d) lives on d (not hard-coded to the CPU or to cuda)."""
    device = _mask_device(ctx)
    size = 5
    mask = _call_on_device(lambda: student.causal_mask(size, device=device), device,
                           f"causal_mask({size}, device={device.type!r})")
    if mask is None:
        return
    what = f"causal_mask({size}, device={device.type!r})"
    _check_device_mask(mask, device, (size, size), what)
    if device.type != "meta":
        checks.assert_equal(mask, oracles.causal_mask(size), what)


# ------------------------------------------------------------------ padding_mask
@pytest.mark.weight(2)
@given(case=S.padding_cases())
def test_padding_mask_marks_positions_from_each_length_on(student, case):
    """padding_mask(lengths, max_len) is the bool (B, max_len) mask True at positions >= lengths[b]."""
    lengths = case.tensor()
    positions = torch.arange(case.max_len)[None, :]
    expected = oracles.padding_mask(lengths, case.max_len)
    _check_mask(student.padding_mask(lengths, case.max_len),
                expected, f"padding_mask({list(case.lengths)}, {case.max_len})", {
                    "padding_off_by_one": positions > lengths[:, None],
                    "mask_inverted": positions < lengths[:, None],
                    "padding_transposed": expected.T,
                })


def test_padding_mask_is_built_on_the_device_of_lengths(student, ctx):
    """padding_mask(lengths, max_len) lives on lengths.device (not hard-coded to the CPU or to cuda)."""
    device = _mask_device(ctx)
    lengths = torch.tensor([3, 1, 5], dtype=torch.long).to(device)
    what = f"padding_mask(lengths on {device.type!r}, 6)"
    mask = _call_on_device(lambda: student.padding_mask(lengths, 6), device, what)
    if mask is None:
        return
    _check_device_mask(mask, device, (3, 6), what)
    if device.type != "meta":
        checks.assert_equal(mask, oracles.padding_mask(lengths.cpu(), 6), what)


# ------------------------------------------------------------------ masked_attention
@pytest.mark.weight(3)
@given(data=S.masked_attention_cases())
@S.first("masked_attention", arg="data")
def test_masked_attention_matches_the_equation(student, data):
    """output and weights equal softmax(q kᵀ / sqrt(d_k) + M) v, M = -inf where the mask is True,
    for causal, padding and arbitrary masks, broadcast or full, any batch dims, Lq != Lk."""
    case, spec = data
    q, k, v = case.tensors()
    mask = spec.build(case)
    out, weights = _masked_attention(student, q, k, v, mask)
    ref_out, ref_weights = oracles.attention(q, k, v, mask)
    at_scale = oracles.attention_at_scale(q, k, v, mask)
    _assert_close(weights, ref_weights, "weights", lambda: _masked_mistakes(q, k, v, mask)[1],
                  lambda f: at_scale(f)[1])
    _assert_close(out, ref_out, "output", lambda: _masked_mistakes(q, k, v, mask)[0],
                  lambda f: at_scale(f)[0])


@S.examples(6)
@given(data=S.masked_attention_cases(), size=st.sampled_from(S.LARGE_LOGITS))
@example(data=(S.AttentionCase(batch=(2,), lq=3, lk=4, d_k=5, d_v=2, dtype=torch.float32, seed=1),
               S.MaskSpec("padding", "keys", 1)), size=300.0)
@example(data=(S.AttentionCase(batch=(), lq=3, lk=3, d_k=3, d_v=2, dtype=torch.float64, seed=2),
               S.MaskSpec("causal", "shared", 2)), size=300.0)
def test_large_scores_with_a_mask_do_not_overflow(student, data, size):
    """with scores of size ~1e3 (q scaled up) and a mask, the weights are still finite probabilities
    that match the equation: a hand-written softmax must subtract each row's maximum before exp."""
    case, spec = data
    q, k, v = case.tensors()
    q = q * size
    mask = spec.build(case)
    out, weights = _masked_attention(student, q, k, v, mask)
    ref_out, ref_weights = oracles.attention(q, k, v, mask)
    at_scale = oracles.attention_at_scale(q, k, v, mask)   # a float32 scale (the course's) is fine
    checks.assert_large_logits_close(weights, ref_weights, "weights with large scores",
                                     candidates=lambda: _masked_mistakes(q, k, v, mask)[1],
                                     at_scale=lambda f: at_scale(f)[1])
    checks.assert_large_logits_close(out, ref_out, "output with large scores",
                                     candidates=lambda: _masked_mistakes(q, k, v, mask)[0],
                                     at_scale=lambda f: at_scale(f)[0])


@given(data=S.masked_attention_cases())
@S.first("masked_attention", arg="data")
def test_masked_keys_get_exactly_zero_weight(student, data):
    """where the mask is True the weight is exactly 0 (not merely small)."""
    case, spec = data
    q, k, v = case.tensors()
    mask = spec.build(case)
    _, weights = _masked_attention(student, q, k, v, mask)
    checks.assert_shape(weights, (*case.batch, case.lq, case.lk), "weights")
    full = _full(mask, weights.shape)
    masked = weights.detach().cpu()[full]
    if masked.numel() and bool((masked != 0).any()):
        largest = float(masked.abs().max())
        index = tuple(int(i) for i in (full & (weights.detach().cpu() != 0)).nonzero()[0])
        if bool(torch.isnan(masked).any()):
            found = NAN_HINT
        elif largest < 1e-6:
            found = hints.hint("mask_large_finite")
        else:
            found = hints.diagnose(weights, _masked_mistakes(q, k, v, mask)[1]) or SCORES_HINT
        checks.fail(f"a masked key gets weight {weights[index].item():.6g} at index {index} "
                    f"(largest weight on a masked key: {largest:.3g}); masked keys must get exactly 0",
                    hint=found)


@given(data=S.masked_attention_cases())
@S.first("masked_attention", arg="data")
def test_masked_weights_are_probabilities(student, data):
    """with a mask, each query's weights are still non-negative and sum to 1 over the keys."""
    case, spec = data
    q, k, v = case.tensors()
    mask = spec.build(case)
    _, weights = _masked_attention(student, q, k, v, mask)
    checks.assert_shape(weights, (*case.batch, case.lq, case.lk), "weights")
    diagnosis = lambda: hints.diagnose(weights, _masked_mistakes(q, k, v, mask)[1])  # noqa: E731
    if bool(torch.isnan(weights).any()):
        checks.fail("the weights contain NaN", hint=diagnosis() or NAN_HINT)
    if not bool((weights >= 0).all()):
        checks.fail("some attention weights are negative",
                    hint="Weights come out of a softmax; apply the mask to the scores before it.")
    sums = weights.double().sum(-1)
    if not bool(((sums - 1).abs() <= 1e-4).all()):
        checks.assert_close(sums, torch.ones_like(sums), "the sum of each query's weights over the keys",
                            atol=1e-4, rtol=0, hint=diagnosis() or hints.hint("mask_after_softmax"))


@given(data=S.masked_attention_cases())
@S.first("masked_attention", arg="data")
def test_masked_keys_and_values_do_not_matter(student, data):
    """changing a masked (future / padded) key and its value changes no output it is masked for."""
    case, spec = data
    q, k, v = case.tensors()
    mask = spec.build(case)
    full = _full(mask, (*case.batch, case.lq, case.lk))
    # In each batch element, the key masked for the most queries is changed.
    column = full.sum(-2).argmax(-1)                                        # (*batch,)
    chosen = torch.nn.functional.one_hot(column, case.lk).bool()            # (*batch, lk)
    rows = (full & chosen.unsqueeze(-2)).any(-1)                            # (*batch, lq)
    assume(bool(rows.any()))
    k2 = torch.where(chosen.unsqueeze(-1), S.randn(k.shape, case.seed + 3, k.dtype, 3.0) + 2, k)
    v2 = torch.where(chosen.unsqueeze(-1), S.randn(v.shape, case.seed + 4, v.dtype, 3.0) - 2, v)
    # One call: the original and the changed inputs side by side on a new batch dimension.
    out, _ = _masked_attention(student, torch.stack([q, q]), torch.stack([k, k2]), torch.stack([v, v2]), mask)
    checks.assert_shape(out, (2, *case.batch, case.lq, case.d_v), "output (2 stacked inputs)")
    _no_nan(out, "output")
    checks.assert_close(out[1][rows], out[0][rows],
                        "the output of the queries that cannot see the changed key "
                        "(before and after changing it)",
                        hint="A masked key must have no influence at all: fill the masked scores with "
                             "-inf before the softmax (not 0, not after the softmax, not True = allowed).")


@given(case=S.attention_cases())
def test_without_a_mask_it_is_plain_attention(student, case):
    """masked_attention(q, k, v) and masked_attention(q, k, v, None) equal exercise 1's attention."""
    q, k, v = case.tensors()
    ref_out, ref_weights = oracles.attention(q, k, v)
    for call, what in ((lambda: student.masked_attention(q, k, v), "masked_attention(q, k, v)"),
                       (lambda: student.masked_attention(q, k, v, None), "masked_attention(q, k, v, None)")):
        out, weights = checks.require_pair(call(), what)
        at_scale = oracles.attention_at_scale(q, k, v)
        checks.assert_close(weights, ref_weights, f"{what} weights", at_scale=lambda f: at_scale(f)[1])
        checks.assert_close(out, ref_out, f"{what} output", at_scale=lambda f: at_scale(f)[0])


@given(data=S.masked_attention_cases(), dtype=st.sampled_from(S.FLOAT_DTYPES))
def test_masked_attention_keeps_the_input_dtype(ctx, student, data, dtype):
    """float32 in, float32 out; float64 in, float64 out (output and weights), with a mask."""
    case, spec = data
    q, k, v = (t.to(dtype) for t in case.tensors())
    out, weights = _masked_attention(student, q, k, v, spec.build(case))
    checks.assert_dtype(out, dtype, "output")
    checks.assert_dtype(weights, dtype, "weights")
    _note_if_the_fill_overflows_in_float16(ctx, student)


FLOAT16_NOTE = ("masked_attention fills the masked scores with a large finite number (such as -1e9): "
                "correct in float32 and float64 (no points lost), but it does not fit in float16 "
                "(largest 65504), so under fp16 autocast masked_fill raises \"value cannot be converted "
                "to type c10::Half without overflow\" and exercise 8's AMP training fails. Fill with "
                "float('-inf') or torch.finfo(scores.dtype).min instead.")
_PROBED: "weakref.WeakSet" = weakref.WeakSet()


def _note_if_the_fill_overflows_in_float16(ctx, student) -> None:
    """Once per run: masked_attention on float16 inputs.  An overflow of the
    fill value is a non-scoring note (the contract accepts -1e9 in float32
    and float64); anything else float16 does is not graded."""
    if ctx in _PROBED:
        return
    _PROBED.add(ctx)
    case = S.AttentionCase(batch=(2,), lq=3, lk=3, d_k=4, d_v=2, dtype=torch.float16, seed=3)
    q, k, v = case.tensors()
    try:
        student.masked_attention(q, k, v, oracles.causal_mask(3))
    except StudentError as exc:
        text = str(exc.message).lower()
        if "overflow" in text and ("half" in text or "float16" in text):
            ctx.notes.append(FLOAT16_NOTE)


# ------------------------------------------------------------------ MaskedSelfAttention
def _masked_self_attention(student, case):
    """The student's MaskedSelfAttention(d_model) holding the case's weights (float64 when the case is)."""
    d = case.d_model
    return contract.build(
        student._client, "ex02_masks:MaskedSelfAttention", [d],
        expected={name: (d, d) for name in case.weights()}, values=case.weights(),
        dtype=case.dtype, probe=([case.input()], {}), owner="MaskedSelfAttention",
        contract="W_q, W_k, W_v, each nn.Linear(d_model, d_model, bias=False)",
        missing_hint="Name the layers W_q, W_k, W_v and create them with bias=False.")


@pytest.mark.weight(2)
@given(data=S.masked_self_attention_cases())
@S.first("masked_self_attention", arg="data")
def test_masked_self_attention_matches_the_equation(student, data):
    """MaskedSelfAttention(x, mask) is masked attention of W_q(x), W_k(x), W_v(x); mask=None: no mask."""
    case, spec = data
    module = _masked_self_attention(student, case)
    x = case.input()
    w = case.weights()
    wq, wk, wv = w["W_q.weight"], w["W_k.weight"], w["W_v.weight"]
    mask = spec.build(case.as_attention_case()) if spec is not None else None
    out = module(x) if mask is None else module(x, mask)
    ref, _ = oracles.self_attention(x, wq, wk, wv, mask)

    def candidates():
        found = {"projections_swapped": oracles.self_attention(x, wk, wq, wv, mask)[0]}
        if mask is not None:
            x64 = x.to(torch.float64)
            q, k, v = (x64 @ weight.to(torch.float64).T for weight in (wq, wk, wv))
            found.update(_masked_mistakes(q, k, v, mask)[0])
        else:
            found["no_scale"] = oracles.self_attention(x, wq, wk, wv, scale=1.0)[0]
            found["always_causal"] = oracles.self_attention(x, wq, wk, wv, oracles.causal_mask(case.length))[0]
        return found

    _assert_close(out, ref, "MaskedSelfAttention output", candidates,
                  oracles.self_attention_at_scale(x, wq, wk, wv, mask))
    checks.assert_dtype(out, case.dtype, "MaskedSelfAttention output")


@S.examples(10)
@given(data=S.masked_self_attention_cases(max_batch_dims=1, dtype=torch.float64, allow_none=False))
def test_masked_self_attention_equals_torch_multihead_attention(student, data):
    """equals nn.MultiheadAttention (one head, no bias, identity output projection) given the same
    bool mask as attn_mask."""
    case, spec = data
    module = _masked_self_attention(student, case)
    x = case.input()
    mask = spec.build(case.as_attention_case())
    if x.dim() == 2:
        x, mask = x.unsqueeze(0), mask.unsqueeze(0) if mask.dim() == 3 else mask
    w = case.weights()
    weights = (w["W_q.weight"], w["W_k.weight"], w["W_v.weight"])
    length = case.length
    full = mask.expand(*x.shape[:-2], length, length) if mask.dim() == 3 else mask.expand(length, length)
    out = module(x, mask)
    ref = oracles.torch_single_head(x, x, *weights, mask=full)
    # (A padding mask as attn_mask is what nn.MultiheadAttention makes of a
    # key_padding_mask; comparing that too would cost a slow first call.)
    checks.assert_close(out, ref, "MaskedSelfAttention output vs nn.MultiheadAttention(attn_mask=mask)",
                        at_scale=oracles.self_attention_at_scale(x, *weights, full))


@given(case=S.self_attention_cases(min_len=2), data=st.data())
def test_masked_self_attention_is_causal(student, case, data):
    """with a causal mask, the output at position t does not change when the inputs after t change."""
    module = _masked_self_attention(student, case)
    x = case.input()
    t = data.draw(st.integers(0, case.length - 2), label="t")
    later = torch.arange(case.length) > t
    x2 = torch.where(later.unsqueeze(-1), S.randn(x.shape, case.seed + 7, x.dtype, 3.0), x)
    mask = oracles.causal_mask(case.length)
    # One call: x and the changed x side by side on a new batch dimension.
    both = module(torch.stack([x, x2]), mask)
    checks.assert_shape(both, (2, *x.shape), "MaskedSelfAttention output (2 stacked inputs)")
    _no_nan(both, "MaskedSelfAttention output")
    out, out2 = both[0], both[1]
    checks.assert_close(out2[..., : t + 1, :], out[..., : t + 1, :],
                        f"the outputs at positions 0..{t} when the inputs after position {t} change",
                        hint="With causal_mask(L), position t may only see positions 0..t: apply the "
                             "mask (True = NOT allowed) to the scores, before the softmax.")
