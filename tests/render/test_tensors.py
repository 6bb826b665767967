"""How a counterexample's tensors are drawn (grader/render/tensors.py): the
slice shown is where got is wrong, masks mark the cells they hide, and a
layer's worth of weights is one line."""

from __future__ import annotations

import torch

from grader.counterexample import encode
from grader.render import tensors


def _case(inputs: dict, got: torch.Tensor, expected: torch.Tensor, what: str = "output") -> dict:
    return {"inputs": {k: encode(v) for k, v in inputs.items()},
            "got": {what: encode(got)}, "expected": {what: encode(expected)},
            "tolerance": {"atol": 1e-5, "rtol": 1e-4}}


def test_the_slice_drawn_is_where_got_is_wrong_for_every_tensor_of_that_batch():
    x = torch.arange(2 * 3 * 4, dtype=torch.float64).reshape(2, 3, 4)
    got = x.clone()
    got[1, 2, 3] += 5                                        # only batch 1 is wrong
    case = tensors.shown(_case({"x": x, "bias": torch.zeros(4)}, got, x))
    (what, g, e, wrong), = case.pairs
    assert g.where == e.where == "[1, :, :]"
    assert wrong[2][3] and sum(map(sum, wrong)) == 1          # the wrong cell is on screen
    x_grid = next(i for i in case.inputs if i.name == "x")
    assert x_grid.where == "[1, :, :]" and x_grid.rows[0][0] == "12"   # the input of that batch
    assert "a slice" not in x_grid.header


def test_a_big_matrix_is_drawn_around_its_worst_entry():
    table = torch.zeros(40, 16, dtype=torch.float64)
    got = table.clone()
    got[30, 12] = 1.0
    (what, g, e, wrong), = tensors.shown(_case({}, got, table, "pe")).pairs
    assert g.cut and g.origin == (26, 8) and g.where == "[26:34, 8:16]"
    r, c = 30 - 26, 12 - 8
    assert wrong[r][c] and g.rows[r][c] == "1"
    assert e.where == g.where


def test_without_a_difference_the_first_slice_is_drawn():
    x = torch.ones(3, 2, 2)
    case = tensors.shown(_case({"x": x}, x, x))
    assert case.pairs[0][1].where == "[0, :, :]"


def test_masked_cells_follow_a_key_padding_mask_of_the_batch_drawn_and_a_broadcast_mask():
    weights = torch.full((2, 3, 4), 0.25, dtype=torch.float64)
    got = weights.clone()
    got[1, 0, 0] = 0.9
    padding = torch.tensor([[False, False, False, False], [False, False, True, True]])
    causal = torch.triu(torch.ones(3, 4, dtype=torch.bool), diagonal=1)
    case = tensors.shown(_case({"q": torch.zeros(2, 3, 2), "key_padding_mask": padding,
                                "attn_mask": causal}, got, weights, "weights"))
    (what, g, e, wrong), = case.pairs
    assert g.where == "[1, :, :]"
    expected = (causal | padding[1]).tolist()                 # batch 1's padding, and the causal mask
    assert g.masked == e.masked == expected


def test_a_layer_of_weights_without_values_is_one_line():
    torch.manual_seed(0)
    inputs = {f"{layer}.{p}": torch.randn(8, 8) if p == "weight" else torch.randn(8)
              for layer in ("self_attn.W_q", "self_attn.W_k", "norm1") for p in ("weight", "bias")}
    x = torch.randn(1, 2, 8)
    inputs["x"] = x
    case = tensors.shown(_case(inputs, x, x))
    headers = [g.header for g in case.inputs]
    assert headers[0] == ("6 weights of self_attn.W_q, self_attn.W_k, norm1 " + tensors.HIDDEN)
    assert headers[1].startswith("x (1, 2, 8) float32")
    few = tensors.shown(_case({"W_q.weight": torch.randn(3, 3), "W_k.weight": torch.randn(3, 3)}, x, x))
    assert [g.header for g in few.inputs] == ["W_q.weight, W_k.weight (3, 3) float32 " + tensors.HIDDEN]
