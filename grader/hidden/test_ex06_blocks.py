"""Exercise 6 · the encoder and decoder layers.

Oracle: PyTorch's own layers, nn.TransformerEncoderLayer and
nn.TransformerDecoderLayer(d_model, num_heads, d_ff, dropout=0.0,
batch_first=True, norm_first=False), in float64, holding the student's
weights mapped from the contract's names:

    self_attn / cross_attn .W_q, .W_k, .W_v  ->  self_attn / multihead_attn .in_proj_weight, .in_proj_bias
    self_attn / cross_attn .W_o              ->  .out_proj
    feed_forward.linear1, .linear2           ->  linear1, linear2
    norm1, norm2, norm3                      ->  norm1, norm2, norm3

The reference runs in train() mode with dropout 0: PyTorch's eval-mode fast
path handles padded positions its own way, train mode is the plain equation

    x = norm(x + dropout(sublayer(x)))      (post-norm, as in the paper)

Every weight is random (LayerNorm gains and shifts included), so a swapped
or shared LayerNorm shows.  The usual mistakes are recomputed here, in
float64, to name the one a wrong answer matches.  Each property below says
which mistake it is there to catch.  The layers import exercise 4's
MultiHeadAttention: when a test fails and that is broken, the message says
"fix exercise 4 first".
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from grader import hints
from grader.hidden import checks, contract, devices, oracles
from grader.hidden import strategies as S
from grader.hidden.prerequisites import explain_failures
from grader.sandbox.client import run_procedure

FEED_FORWARD_KEYS = [f"linear{i}.{w}" for i in (1, 2) for w in ("weight", "bias")]
NAMES = {"encoder": "EncoderLayer", "decoder": "DecoderLayer", "feed_forward": "FeedForward"}


def examples(n: int):
    """At most n examples and no shrinking: every example builds a model in the
    worker, and shrinking a failing case costs a hundred more of them.  The
    first failing case is reported (hypothesis tries the simplest one first)."""
    return S.examples(n, shrink=False)


# ------------------------------------------------------------------ helpers
def _expected_shapes(keys, d_model: int, d_ff: int) -> dict:
    shapes = {}
    for key in keys:
        leaf = key.rsplit(".", 1)[-1]
        if "linear1" in key:
            shapes[key] = (d_ff, d_model) if leaf == "weight" else (d_ff,)
        elif "linear2" in key:
            shapes[key] = (d_model, d_ff) if leaf == "weight" else (d_model,)
        elif ".W_" in key or key.startswith("W_"):
            shapes[key] = (d_model, d_model) if leaf == "weight" else (d_model,)
        else:
            shapes[key] = (d_model,)
    return shapes


def _build(ctx, kind: str, case, *, dropout: float = 0.0, plain_norms: bool = False,
           seed: int | None = None):
    """The student's layer holding random weights (float64 when the case is);
    returns (module, the weights).  plain_norms: LayerNorms keep gain 1, shift 0."""
    name = NAMES[kind]
    if kind == "feed_forward":
        args = (case.d_model, case.d_ff, dropout)
        keys = FEED_FORWARD_KEYS
        described = "linear1 = nn.Linear(d_model, d_ff), linear2 = nn.Linear(d_ff, d_model)"
    else:
        args = (case.d_model, case.num_heads, case.d_ff, dropout)
        keys = oracles.layer_keys(kind)
        described = ("self_attn" + (", cross_attn" if kind == "decoder" else "") +
                    " (exercise 4's MultiHeadAttention), feed_forward (FeedForward: linear1, linear2), "
                    + ", ".join(oracles.LAYER_NORMS[kind]) + " (nn.LayerNorm(d_model))")
    shapes = _expected_shapes(keys, case.d_model, case.d_ff)
    values = S.random_state(shapes, case.seed if seed is None else seed, case.dtype)
    if plain_norms:
        for key in values:
            if "norm" in key:
                values[key] = torch.ones_like(values[key]) if key.endswith("weight") else \
                    torch.zeros_like(values[key])
    x = case.x()
    probe = ([x, case.memory()] if kind == "decoder" else [x], {})
    module = contract.build(ctx.client, f"ex06_blocks:{name}", args, {}, expected=shapes,
                            values=values, dtype=torch.float64 if case.dtype == torch.float64 else None,
                            probe=probe, owner=name, contract=described,
                            missing_hint=f"Use the contract's attribute names: {described}.")
    return module, values


# ---------------------------------------------------------- the usual mistakes
def _mha(w, name, H, q_in, kv_in, attn_mask=None, key_padding_mask=None):
    """MultiHead(q_in, kv_in, kv_in) in float64 (the paper's equation)."""
    def lin(x, p):
        return x @ w[f"{name}.W_{p}.weight"].T + w[f"{name}.W_{p}.bias"]
    B, Lq, D = q_in.shape
    Lk, d_k = kv_in.shape[1], D // H

    def split(t, L):
        return t.reshape(B, L, H, d_k).transpose(1, 2)

    mask = attn_mask
    if key_padding_mask is not None:
        pad = key_padding_mask[:, None, None, :]
        mask = pad if mask is None else mask | pad
    out, _ = oracles.attention(split(lin(q_in, "q"), Lq), split(lin(kv_in, "k"), Lk),
                               split(lin(kv_in, "v"), Lk), mask)
    return lin(out.transpose(1, 2).reshape(B, Lq, D), "o")


def _variant(kind, values, H, x, memory=None, tgt_mask=None, pad=None, mem_pad=None, *,
             residual="post", relu="between", norms=None, cross_kv="memory", self_mask=True,
             self_pad=True, cross_pad="memory", causal_in_cross=False):
    """The layer in float64, with one usual mistake switched on."""
    w = {k: v.detach().to(torch.float64) for k, v in values.items()}
    x = x.detach().to(torch.float64)
    memory = None if memory is None else memory.detach().to(torch.float64)
    D = x.shape[-1]
    norms = norms or oracles.LAYER_NORMS[kind]

    def norm(t, i):
        n = norms[i]
        return F.layer_norm(t, (D,), w[f"{n}.weight"], w[f"{n}.bias"], 1e-5)

    def ffn(t):
        h = t @ w["feed_forward.linear1.weight"].T + w["feed_forward.linear1.bias"]
        if relu != "none":
            h = torch.relu(h)
        out = h @ w["feed_forward.linear2.weight"].T + w["feed_forward.linear2.bias"]
        return torch.relu(out) if relu == "after" else out

    def sub(t, i, f):
        if residual == "pre":
            return t + f(norm(t, i))
        if residual == "inside":
            return t + norm(f(t), i)
        if residual == "none":
            return norm(f(t), i)
        return norm(t + f(t), i)

    self_attn = lambda t: _mha(w, "self_attn", H, t, t, tgt_mask if self_mask else None,  # noqa: E731
                               pad if self_pad else None)
    x = sub(x, 0, self_attn)
    if kind == "decoder":
        def cross(t):
            kv = memory if cross_kv == "memory" else t
            key_pad = {"memory": mem_pad, "none": None, "tgt": pad}[cross_pad]
            return _mha(w, "cross_attn", H, t, kv, tgt_mask if causal_in_cross else None, key_pad)
        x = sub(x, 1, cross)
    return sub(x, len(norms) - 1, ffn)


def _mistakes(kind, values, H, x, memory=None, tgt_mask=None, pad=None, mem_pad=None):
    """{mistake: what it would have returned} on this input (computed on failure only)."""
    args = (kind, values, H, x, memory, tgt_mask, pad, mem_pad)
    found = {
        "pre_norm": dict(residual="pre"),
        "no_residual": dict(residual="none"),
        "norm_inside_residual": dict(residual="inside"),
        "no_relu": dict(relu="none"),
        "relu_after_linear2": dict(relu="after"),
        "norms_mixed": dict(norms=("norm1",) * len(oracles.LAYER_NORMS[kind])),
    }
    if pad is not None:
        found["padding_ignored"] = dict(self_pad=False)
    if kind == "decoder":
        found["cross_from_x"] = dict(cross_kv="x", cross_pad="none")
        if pad is not None:
            found["cross_copied_from_self"] = dict(cross_kv="x", cross_pad="tgt")
        if tgt_mask is not None:
            found["tgt_mask_ignored"] = dict(self_mask=False)
        if mem_pad is not None:
            found["memory_padding_ignored"] = dict(cross_pad="none")
        if memory is not None and memory.shape[1] == x.shape[1]:
            if tgt_mask is not None:
                found["causal_in_cross"] = dict(causal_in_cross=True)
            if pad is not None:
                found["tgt_padding_in_cross"] = dict(cross_pad="tgt")
    out = {}
    for key, kw in found.items():
        try:
            out[key] = _variant(*args, **kw)
        except RuntimeError:
            continue
    return out


def _run(module, kind, case, x=None, memory=None):
    """Call the student's layer as the contract does."""
    x = case.x() if x is None else x
    if kind == "encoder":
        return module(x, src_key_padding_mask=case.tgt_padding())
    memory = case.memory() if memory is None else memory
    return module(x, memory, tgt_mask=case.tgt_mask(), tgt_key_padding_mask=case.tgt_padding(),
                  memory_key_padding_mask=case.src_padding())


def _reference(kind, values, case, x=None, memory=None):
    x = case.x() if x is None else x
    if kind == "encoder":
        return oracles.encoder_layer(values, case.num_heads, x, case.tgt_padding())
    memory = case.memory() if memory is None else memory
    return oracles.decoder_layer(values, case.num_heads, x, memory, case.tgt_mask(),
                                 case.tgt_padding(), case.src_padding())


def _candidates(kind, values, case):
    def make():
        return _mistakes(kind, values, case.num_heads, case.x(),
                         case.memory() if kind == "decoder" else None,
                         case.tgt_mask() if kind == "decoder" else None, case.tgt_padding(),
                         case.src_padding() if kind == "decoder" else None)
    return make


# ------------------------------------------------------------------ FeedForward
@examples(8)
@given(case=S.layer_cases())
@explain_failures
def test_feed_forward_matches_the_equation(ctx, student, case):
    """FeedForward(x) = linear2(relu(linear1(x))) at every position.

    Catches a missing ReLU, or a ReLU after linear2 too."""
    module, values = _build(ctx, "feed_forward", case)
    x = case.x()
    out = module(x)
    w = {k: v.double() for k, v in values.items()}
    hidden = x.double() @ w["linear1.weight"].T + w["linear1.bias"]
    expected = torch.relu(hidden) @ w["linear2.weight"].T + w["linear2.bias"]
    checks.assert_close(out, expected, "FeedForward output", candidates=lambda: {
        "no_relu": hidden @ w["linear2.weight"].T + w["linear2.bias"],
        "relu_after_linear2": torch.relu(torch.relu(hidden) @ w["linear2.weight"].T + w["linear2.bias"]),
    })
    checks.assert_dtype(out, case.dtype, "FeedForward output")


# ------------------------------------------------------------------ EncoderLayer
@pytest.mark.weight(2)
@examples(12)
@given(case=S.layer_cases())
@explain_failures
@S.first("layer")
def test_encoder_layer_equals_torch(ctx, student, case):
    """EncoderLayer equals nn.TransformerEncoderLayer with the same weights, with and without padding.

    Catches pre-norm, a missing residual, LayerNorm before the residual sum,
    a LayerNorm shared by two sub-layers, a padding mask not passed on."""
    module, values = _build(ctx, "encoder", case)
    out = _run(module, "encoder", case)
    checks.assert_close(out, _reference("encoder", values, case),
                        "EncoderLayer output vs nn.TransformerEncoderLayer",
                        candidates=_candidates("encoder", values, case),
                        at_scale=lambda f: _reference("encoder", oracles.queries_scaled(values, f), case))
    checks.assert_dtype(out, case.dtype, "EncoderLayer output")


# ------------------------------------------------------------------ DecoderLayer
@pytest.mark.weight(3)
@examples(15)
@given(case=S.layer_cases())
@explain_failures
@S.first("layer")
def test_decoder_layer_equals_torch(ctx, student, case):
    """DecoderLayer equals nn.TransformerDecoderLayer with the same weights, causal and padding masks.

    Catches cross-attention keys and values from x instead of memory, a mask
    ignored or passed to the wrong attention, pre-norm, a missing residual."""
    module, values = _build(ctx, "decoder", case)
    out = _run(module, "decoder", case)
    checks.assert_close(out, _reference("decoder", values, case),
                        "DecoderLayer output vs nn.TransformerDecoderLayer",
                        candidates=_candidates("decoder", values, case),
                        at_scale=lambda f: _reference("decoder", oracles.queries_scaled(values, f), case))
    checks.assert_dtype(out, case.dtype, "DecoderLayer output")


# ------------------------------------------------------------------ properties
@examples(6)
@given(case=S.layer_cases(dtype=torch.float64, min_d_model=4),  # 2-3 features: a row may be ~constant
       kind=st.sampled_from(("encoder", "decoder")))
@explain_failures
@S.first("layer_float64", kind="decoder")
@S.first("layer_float64", kind="encoder")
def test_output_rows_have_layer_norm_statistics(ctx, student, case, kind):
    """post-norm: with LayerNorm gain 1 and shift 0, every output row has mean 0 and variance 1.

    A pre-norm layer, or one that normalizes before the residual sum, ends
    with a sum, not with a LayerNorm."""
    module, values = _build(ctx, kind, case, plain_norms=True)
    out = checks.require_tensor(_run(module, kind, case), f"{NAMES[kind]} output")
    checks.assert_shape(out, (case.batch, case.tgt_len, case.d_model), f"{NAMES[kind]} output")
    mean = out.double().mean(-1)
    var = out.double().var(-1, unbiased=False)  # v / (v + eps) after a LayerNorm: just below 1
    worst_mean = float(mean.abs().max())
    low, high = float(var.min()), float(var.max())
    normalized = worst_mean <= 1e-5 and 0.5 <= low and high <= 1 + 1e-5
    hint = ""
    if not normalized:
        found = _mistakes(kind, values, case.num_heads, case.x(),
                          case.memory() if kind == "decoder" else None,
                          case.tgt_mask() if kind == "decoder" else None, case.tgt_padding(),
                          case.src_padding() if kind == "decoder" else None)
        hint = hints.diagnose(out, {k: found[k] for k in ("pre_norm", "norm_inside_residual")
                                    if k in found}) or hints.hint("pre_norm")
    checks.assert_true(normalized,
                       f"{NAMES[kind]} output rows are not normalized: |mean| up to {worst_mean:.3g}, "
                       f"variance from {low:.3g} to {high:.3g} (LayerNorm gains 1, shifts 0: mean 0, "
                       "variance 1); the last operation of a post-norm layer is a LayerNorm", hint=hint)


@examples(8)
@given(case=S.layer_cases(min_len=2, causal=True), data=st.data())
@explain_failures
def test_decoder_output_at_t_ignores_later_positions(ctx, student, case, data):
    """with the causal tgt_mask, the decoder's output at t ignores x after t.

    Catches tgt_mask ignored (or given to cross-attention instead)."""
    t = data.draw(st.integers(0, case.tgt_len - 2), label="t")
    module, values = _build(ctx, "decoder", case)
    x = case.x()
    changed = x.clone()
    changed[:, t + 1:] = S.randn(changed[:, t + 1:].shape, case.seed + 99, case.dtype) * 3
    out = checks.require_tensor(_run(module, "decoder", case, x=x), "DecoderLayer output")
    out2 = checks.require_tensor(_run(module, "decoder", case, x=changed), "DecoderLayer output")
    checks.assert_shape(out, x.shape, "DecoderLayer output")
    checks.assert_close(out2[:, :t + 1], out[:, :t + 1],
                        f"DecoderLayer output at positions 0..{t} after changing x at positions "
                        f"{t + 1}..{case.tgt_len - 1}", hint=hints.hint("tgt_mask_ignored"))


@examples(8)
@given(case=S.layer_cases(min_len=2, padding=True), kind=st.sampled_from(("encoder", "decoder")))
@explain_failures
@S.first("layer", kind="decoder")
def test_padded_positions_change_nothing(ctx, student, case, kind):
    """changing padded memory positions (decoder) or padded positions (encoder) changes nothing.

    For the encoder, the outputs at the real positions are compared.
    Catches a padding mask not passed on to the attention."""

    lengths = case.src_lengths if kind == "decoder" else case.tgt_lengths
    total = case.src_len if kind == "decoder" else case.tgt_len
    assume(any(n < total for n in lengths))
    module, values = _build(ctx, kind, case)
    pad = S.lengths_mask(list(lengths), total)
    noise = S.randn((case.batch, total, case.d_model), case.seed + 77, case.dtype) * 3
    if kind == "decoder":
        memory = case.memory()
        changed = torch.where(pad[..., None], noise, memory)
        out = checks.require_tensor(_run(module, kind, case, memory=memory), "DecoderLayer output")
        out2 = checks.require_tensor(_run(module, kind, case, memory=changed), "DecoderLayer output")
        checks.assert_close(out2, out, "DecoderLayer output after changing the padded memory positions",
                            hint=hints.hint("memory_padding_ignored"))
    else:
        x = case.x()
        changed = torch.where(pad[..., None], noise, x)
        out = checks.require_tensor(_run(module, kind, case, x=x), "EncoderLayer output")
        out2 = checks.require_tensor(_run(module, kind, case, x=changed), "EncoderLayer output")
        keep = ~pad
        checks.assert_close(out2[keep], out[keep],
                            "EncoderLayer output at the real positions after changing the padded ones",
                            hint=hints.hint("padding_ignored"))


@explain_failures
def test_dropout_acts_only_in_training(ctx, student):
    """dropout acts in train() mode only: eval() mode equals the same weights with dropout=0.

    Catches F.dropout(x, p) without training=self.training (dropout in
    eval mode too), and dropout never applied."""
    case = S.LayerCase(batch=2, tgt_len=4, src_len=5, d_model=8, num_heads=2, d_ff=16,
                       tgt_lengths=(4, 3), src_lengths=(5, 2), causal=True, dtype=torch.float64, seed=5)
    for kind in ("feed_forward", "encoder", "decoder"):
        name = NAMES[kind]
        module, values = _build(ctx, kind, case, dropout=0.5)
        run = (lambda: module(case.x())) if kind == "feed_forward" else (lambda: _run(module, kind, case))
        module.call("train")
        a, b = checks.require_tensor(run(), name), checks.require_tensor(run(), name)
        checks.assert_true(not torch.equal(a, b),
                           f"{name}(dropout=0.5) in train() mode gave the same output twice: "
                           "its dropout is never applied",
                           hint="Apply the dropout module(s) the contract lists: in the layers on each "
                                "sub-layer's output before the residual sum, in FeedForward after the ReLU.")
        module.call("eval")
        a, b = checks.require_tensor(run(), name), checks.require_tensor(run(), name)
        checks.assert_true(torch.equal(a, b),
                           f"{name}(dropout=0.5) in eval() mode gave two different outputs: dropout "
                           "still acts outside training",
                           hint="Use nn.Dropout modules (they follow train()/eval()), or "
                                "F.dropout(x, p, training=self.training).")
        plain, _ = _build(ctx, kind, case, dropout=0.0)
        expected = checks.require_tensor(
            plain(case.x()) if kind == "feed_forward" else _run(plain, kind, case), name)
        checks.assert_close(a, expected, f"{name}(dropout=0.5) in eval() mode vs the same {name} "
                            "built with dropout=0.0",
                            hint="In eval() mode dropout is the identity: nothing is dropped or rescaled.")


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
@explain_failures
def test_runs_on_the_inputs_device(ctx, student, kind):
    """with the layer, its inputs and masks on another device, forward runs there: masks and constants
    are built on the input's device (a GPU, or "meta" on a CPU-only machine)."""
    device = devices.other_device(ctx)
    case = S.LayerCase(batch=2, tgt_len=4, src_len=3, d_model=8, num_heads=2, d_ff=16,
                       tgt_lengths=(4, 2), src_lengths=(3, 1), causal=True, dtype=torch.float32, seed=5)
    module, _ = _build(ctx, kind, case)
    module.call("to", device)
    x, memory = case.x().to(device), case.memory().to(device)
    tpad, spad, causal = (t.to(device) for t in (case.tgt_padding(), case.src_padding(), case.tgt_mask()))
    if kind == "encoder":
        call = lambda: module(x, src_key_padding_mask=tpad)  # noqa: E731
    else:
        call = lambda: module(x, memory, tgt_mask=causal, tgt_key_padding_mask=tpad,  # noqa: E731
                              memory_key_padding_mask=spad)
    out = devices.call_on_device(call, device, f"{NAMES[kind]} with its inputs and masks on {device.type!r}")
    if out is not None:
        devices.assert_on(out, device, f"{NAMES[kind]}'s output")


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
@explain_failures
def test_gradients_reach_every_parameter(ctx, student, kind):
    """gradients reach every parameter and input, equal to PyTorch's layer's.

    Catches detach(), .data, unused sub-layers or LayerNorms, a decoder that
    never reads memory.  The gradient values are compared only when the
    output itself is right."""
    case = S.LayerCase(batch=2, tgt_len=4, src_len=3, d_model=8, num_heads=2, d_ff=16,
                       tgt_lengths=(4, 2), src_lengths=(3, 1), causal=True, dtype=torch.float64, seed=3)
    module, values = _build(ctx, kind, case)
    x, memory = case.x(), case.memory()
    if kind == "encoder":
        args = [x, case.tgt_padding()]
    else:
        args = [x, memory, case.tgt_mask(), case.tgt_padding(), case.src_padding()]
    out, arg_grads, param_grads = run_procedure(ctx.client, "common:gradients", module, args,
                                                names=oracles.layer_keys(kind))
    name = NAMES[kind]
    missing = [k for k in oracles.layer_keys(kind) if param_grads.get(k) is None]
    checks.assert_true(not missing, f"no gradient reaches {name}.{', '.join(missing[:4])}"
                       + (f" and {len(missing) - 4} more" if len(missing) > 4 else ""),
                       hint="Every sub-layer and LayerNorm of the contract must be used in forward, "
                            "without detach(), .data or numpy.")
    # The same backward through PyTorch's layer.
    layer = oracles.torch_layer(kind, values, case.num_heads)
    ref_x = x.clone().requires_grad_(True)
    ref_mem = memory.clone().requires_grad_(True)
    if kind == "encoder":
        ref_out = oracles.run_layer(layer, ref_x, tgt_key_padding_mask=case.tgt_padding())
    else:
        ref_out = oracles.run_layer(layer, ref_x, ref_mem, case.tgt_mask(), case.tgt_padding(),
                                    case.src_padding())
    projection = torch.randn(ref_out.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    (ref_out * projection).sum().backward()
    checks.assert_true(arg_grads[0] is not None, f"no gradient reaches {name}'s input x",
                       hint="Do not detach x, use .data, or go through numpy.")
    if kind == "decoder":
        checks.assert_true(arg_grads[1] is not None, "no gradient reaches the memory",
                           hint="Cross-attention's keys and values come from memory: "
                                "cross_attn(x, memory, memory).")
    if out.shape != ref_out.shape or not torch.allclose(out.double(), ref_out.detach(), atol=1e-9,
                                                        rtol=1e-7):
        return  # a wrong output is the other tests' business: only the gradients' presence counts here
    hint = "The output is right but a gradient is not: something in forward is detached (.detach(), " \
           ".data, a numpy round trip, an in-place write into a tensor autograd needs)."
    checks.assert_close(arg_grads[0], ref_x.grad, "the gradient with respect to x", hint=hint)
    if kind == "decoder":
        checks.assert_close(arg_grads[1], ref_mem.grad, "the gradient with respect to memory", hint=hint)
    theirs = oracles.layer_state_to_torch({k: param_grads[k] for k in oracles.layer_keys(kind)}, kind)
    for key, p in layer.named_parameters():
        checks.assert_close(theirs[key], p.grad, f"the gradient of the parameters mapped to {key}", hint=hint)
