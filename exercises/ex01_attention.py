"""Exercise 1 · Scaled dot-product attention and self-attention.

Attention lets every token look at every other token and decide how much
each one should influence its new, context-aware representation. Section 3.2.1
of "Attention Is All You Need" writes it as one line:

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

- The queries Q ask "what am I looking for?", the keys K answer "what do I
  contain?", and the values V are what actually gets mixed together.
- Q K^T holds the dot product of every query with every key: an unscaled
  similarity score, shape (Lq, Lk).
- Dividing by sqrt(d_k) keeps the scores from growing with the width d_k of
  the keys; without it the softmax saturates and its gradients vanish.
- softmax over the LAST dimension (the keys) turns each row of scores into
  percentages that sum to 1: how much influence each key has on that query.
- Multiplying by V takes, for each query, the weighted average of the values.

Shapes (batch-first, any number of leading batch dimensions "..."):

    q        (..., Lq, d_k)
    k        (..., Lk, d_k)
    v        (..., Lk, d_v)
    weights  (..., Lq, Lk)     each row sums to 1
    output   (..., Lq, d_v)

Self-attention is the special case where Q, K and V all come from the same
sequence x through three learned linear maps (no bias):

    Q = x W_q^T,   K = x W_k^T,   V = x W_v^T

Usual mistakes:
- ``k.T`` instead of ``k.transpose(-2, -1)``: ``.T`` reverses ALL dimensions
  and breaks as soon as there is a batch dimension.
- softmax over the wrong dimension (dim=-2 makes columns, not rows, sum to 1).
- scaling by d_k instead of sqrt(d_k), or by the size of the values d_v.
- hard-coding ``.cuda()`` / ``float32``: the code must follow the input's
  device and dtype.
"""

import math

import torch
import torch.nn as nn


def scaled_dot_product_attention(q, k, v):
    """softmax(q k^T / sqrt(d_k)) v.

    Args:
        q: queries, (..., Lq, d_k).
        k: keys, (..., Lk, d_k).
        v: values, (..., Lk, d_v).

    Returns:
        (output, weights): output (..., Lq, d_v) and the attention weights
        (..., Lq, Lk), whose rows sum to 1.
    """
    # TODO: Implement for Exercise 1.
    raise NotImplementedError("Exercise 1: scaled_dot_product_attention")


class SelfAttention(nn.Module):
    """Single-head self-attention: queries, keys and values all come from x.

    Attributes:
        W_q, W_k, W_v: nn.Linear(d_model, d_model, bias=False).
    """

    def __init__(self, d_model):
        super().__init__()
        # TODO: Implement for Exercise 1.
        raise NotImplementedError("Exercise 1: SelfAttention.__init__")

    def forward(self, x):
        """Attention(W_q(x), W_k(x), W_v(x)).

        Args:
            x: token encodings, (..., L, d_model).

        Returns:
            The context-aware encodings, (..., L, d_model).
        """
        # TODO: Implement for Exercise 1.
        raise NotImplementedError("Exercise 1: SelfAttention.forward")
