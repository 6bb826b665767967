"""The usual mistakes, and how to recognise them.

A hidden test that finds a wrong value computes what the usual mistakes would
have produced on the same input (`candidates`), and `diagnose` names the one
the student's answer matches.  The texts live here, one per mistake, so the
same slip is explained the same way in every exercise.
"""

from __future__ import annotations

import torch

MISTAKES: dict[str, str] = {
    # exercise 1
    "no_scale": "Forgot the 1/sqrt(d_k) scaling: scores must be q kᵀ / sqrt(d_k).",
    "scale_by_dk": "Divided by d_k instead of sqrt(d_k).",
    "scale_by_dv": "Scaled by sqrt(d_v) (the value size) instead of sqrt(d_k) (the key size).",
    "scale_multiplied": "Multiplied by sqrt(d_k) instead of dividing.",
    "softmax_wrong_dim": "Softmax over the wrong dimension: each query's weights (the last "
                         "dimension, over keys) must sum to 1.",
    "weights_transposed": "The weights are transposed: rows are queries, columns are keys.",
    "no_softmax": "The softmax is missing: weights are softmax(q kᵀ / sqrt(d_k)).",
    "weights_before_scale": "Returned the weights before the softmax (the raw scores).",
    "projections_swapped": "Queries, keys and values come from W_q, W_k and W_v respectively; "
                           "two of them are swapped.",
    "linear_bias": "The projections must have no bias (nn.Linear(..., bias=False)).",
    # exercise 2
    "mask_inverted": "The mask convention is inverted: True means NOT allowed "
                     "(like nn.MultiheadAttention's attn_mask), so fill where mask is True.",
    "mask_after_softmax": "The mask was applied after the softmax: mask the scores first, "
                          "then softmax, so each row still sums to 1.",
    "mask_ignored": "The mask is ignored.",
    "mask_zero_fill": "Masked scores were filled with 0 instead of -inf (or the dtype's "
                      "minimum): exp(0) is not 0, so masked keys still get weight.",
    "causal_lower": "The causal mask must be True strictly ABOVE the diagonal (future keys).",
    "causal_diagonal": "The causal mask must not include the diagonal: a token may attend to itself.",
    "padding_off_by_one": "Padding starts at index lengths[b] (positions >= length are padding).",
}


def hint(key: str) -> str:
    return MISTAKES[key]


def diagnose(actual, candidates: dict[str, torch.Tensor], *, atol: float = 1e-5,
             rtol: float = 1e-4) -> str:
    """The text of the first usual mistake whose output matches `actual`."""
    if not isinstance(actual, torch.Tensor):
        return ""
    for key, candidate in candidates.items():
        if candidate is None or candidate.shape != actual.shape:
            continue
        a = actual.detach().to("cpu", torch.float64)
        c = candidate.detach().to("cpu", torch.float64)
        if torch.allclose(a, c, atol=atol, rtol=rtol, equal_nan=True):
            return MISTAKES.get(key, key)
    return ""
