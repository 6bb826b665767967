"""Exercises 6 (layers) and 7 (Transformer): the reference solutions get
full marks, the stubs get nothing as "not implemented", and the
judge's own references agree with PyTorch and with the solutions.

The wrong and correct submissions are in tests/fixtures/ex06 and ex07
(graded by tests/test_fixtures.py).
"""

from __future__ import annotations


import pytest
import torch

from grader import hints
from grader.hidden import oracles
from grader.hidden import strategies as S
from grader.results import Status
from tests.conftest import import_solution, EXERCISES, SOLUTIONS, describe, grade

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnknownMarkWarning")



_solution = import_solution


# ------------------------------------------------------------------ grading
@pytest.mark.slow
def test_solutions_score_full_marks():
    report = grade(SOLUTIONS, 6, 7)
    for result in report.exercises:
        assert result.status is Status.PASSED, describe(result)
        assert result.points == pytest.approx(10.0), describe(result)


@pytest.mark.slow
def test_stubs_score_zero_as_not_implemented():
    report = grade(EXERCISES, 6, 7)
    for result in report.exercises:
        assert result.points == 0.0, describe(result)
        assert result.status is Status.NOT_IMPLEMENTED, describe(result)
        assert all(t.status is Status.NOT_IMPLEMENTED for t in result.tests), describe(result)


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


def test_the_transformer_reference_equals_the_solution():
    from grader.hidden import test_ex07_transformer as T

    ex07 = _solution("ex07_transformer")
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


def test_the_greedy_scenarios_hold_for_the_solution():
    """The first (seed, eos bias) of the mixed scenario works, so grading does
    not search; the reference's greedy loop equals the solution's."""
    from grader.hidden import test_ex07_transformer as T

    ex07 = _solution("ex07_transformer")
    model = ex07.Transformer(**T.GREEDY.kwargs())
    seed, bias = T.MIXED_TRIES[0]
    state, ref = T._weights(model.state_dict(), T.GREEDY, seed=seed, adjust=T._with_eos_bias(bias))
    assert T._is_mixed(ref)
    model.load_state_dict(state)
    model.eval()
    ours, _, _ = ref.greedy(T.GREEDY.src(), 8, T.BOS, T.EOS, T.GREEDY.src_padding())
    theirs = ex07.greedy_decode(model, T.GREEDY.src(), 8, T.BOS, T.EOS, T.GREEDY.src_padding())
    assert torch.equal(ours, theirs)
