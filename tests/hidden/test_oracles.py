"""The judge's oracles (grader/hidden/oracles.py) agree with PyTorch and the
paper, the solutions agree with them, and the usual mistakes they generate
are visible where the hidden tests look.
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
from tests.conftest import import_solution


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
    mha = import_solution("ex04_multi_head").MultiHeadAttention(case.d_model, case.num_heads, bias=case.bias)
    mha.to(case.dtype).load_state_dict(case.weights())
    q, k, v = case.inputs()
    attn_mask, key_padding_mask = case.mask_tensors()
    out, weights = mha(q, k, v, attn_mask=attn_mask, key_padding_mask=key_padding_mask)
    ref_out, ref_weights = oracles.multi_head(q, k, v, case.weights(), case.num_heads, attn_mask,
                                              key_padding_mask)
    tol = dict(atol=2e-5, rtol=1e-4) if case.dtype == torch.float32 else dict(atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(out.double(), ref_out, **tol)
    torch.testing.assert_close(weights.double(), ref_weights, **tol)


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
    solution = import_solution("ex05_positional_encoding")
    for max_len, d_model in ((1, 2), (7, 4), (100, 64)):
        table = solution.sinusoidal_encoding(max_len, d_model)
        torch.testing.assert_close(table.double(), oracles.sinusoidal(max_len, d_model), atol=1e-7, rtol=0)


# ------------------------------------------------------------------ the judge's references
def _layer_case(**kw):
    base = dict(batch=2, tgt_len=4, src_len=4, d_model=8, num_heads=2, d_ff=16, tgt_lengths=(4, 2),
                src_lengths=(4, 3), causal=True, dtype=torch.float64, seed=9)
    base.update(kw)
    return S.LayerCase(**base)


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_the_mistake_generator_agrees_with_pytorch_when_no_mistake_is_made(kind):
    from grader.hidden import test_ex06_blocks as T

    case = _layer_case()
    keys = oracles.layer_keys(kind)
    values = S.random_state(T._expected_shapes(keys, case.d_model, case.d_ff), case.seed, torch.float64)
    if kind == "encoder":
        expected = oracles.encoder_layer(values, case.num_heads, case.x(), case.tgt_padding())
        plain = T._variant(kind, values, case.num_heads, case.x(), pad=case.tgt_padding())
        pre = oracles.encoder_layer(values, case.num_heads, case.x(), case.tgt_padding(), norm_first=True)
    else:
        args = (case.x(), case.memory(), case.tgt_mask(), case.tgt_padding(), case.src_padding())
        expected = oracles.decoder_layer(values, case.num_heads, *args)
        plain = T._variant(kind, values, case.num_heads, *args)
        pre = oracles.decoder_layer(values, case.num_heads, *args, norm_first=True)
    torch.testing.assert_close(plain, expected)
    mistakes = T._mistakes(kind, values, case.num_heads, case.x(),
                           *((case.memory(), case.tgt_mask()) if kind == "decoder" else (None, None)),
                           case.tgt_padding(), case.src_padding() if kind == "decoder" else None)
    torch.testing.assert_close(mistakes["pre_norm"], pre)  # PyTorch's norm_first=True agrees
    for key, value in mistakes.items():
        assert key in hints.MISTAKES, key
        assert not torch.allclose(value, expected, atol=1e-6), f"{key} is not a mistake here"


def test_the_transformer_reference_equals_theimport_solution():
    from grader.hidden import test_ex07_transformer as T

    ex07 = import_solution("ex07_transformer")
    case = S.TransformerCase(batch=3, src_len=6, tgt_len=5, src_vocab=11, tgt_vocab=13, d_model=12,
                             num_heads=2, num_layers=2, d_ff=16, src_lengths=(6, 2, 4),
                             tgt_lengths=(5, 5, 3), dtype=torch.float64, seed=4)
    model = ex07.Transformer(**case.kwargs()).double()
    state, ref = T._weights(model.state_dict(), case)
    model.load_state_dict(state)
    src, tgt, spad, tpad = case.src(), case.tgt(), case.src_padding(), case.tgt_padding()
    expected = model(src, tgt, src_key_padding_mask=spad, tgt_key_padding_mask=tpad)
    torch.testing.assert_close(ref.forward(src, tgt, spad, tpad), expected.detach())
    for key, variant in T._variants(ref, case, padding=True).items():
        assert key in hints.MISTAKES, key
        assert not torch.allclose(variant.forward(src, tgt, spad, tpad), expected, atol=1e-6), key
    assert sum(p.numel() for p in model.parameters()) == oracles.transformer_parameter_count(
        11, 13, 12, 2, 16)
    tied = ex07.Transformer(**case.kwargs(tie_weights=True))
    assert sum(p.numel() for p in tied.parameters()) == oracles.transformer_parameter_count(
        11, 13, 12, 2, 16, tie_weights=True)


def test_the_greedy_scenarios_hold_for_theimport_solution():
    """The first (seed, eos bias) of the mixed scenario works, so grading does
    not search; the reference's greedy loop equals the solution's."""
    from grader.hidden import test_ex07_transformer as T

    ex07 = import_solution("ex07_transformer")
    model = ex07.Transformer(**T.GREEDY.kwargs())
    seed, bias = T.MIXED_TRIES[0]
    state, ref = T._weights(model.state_dict(), T.GREEDY, seed=seed, adjust=T._with_eos_bias(bias))
    assert T._is_mixed(ref)
    model.load_state_dict(state)
    model.eval()
    ours, _, _ = ref.greedy(T.GREEDY.src(), 8, T.BOS, T.EOS, T.GREEDY.src_padding())
    theirs = ex07.greedy_decode(model, T.GREEDY.src(), 8, T.BOS, T.EOS, T.GREEDY.src_padding())
    assert torch.equal(ours, theirs)
