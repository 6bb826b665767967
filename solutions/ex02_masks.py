"""Exercise 2 · Masks: causal (no peeking ahead) and padding.

Self-attention can look at the words before AND after the word of interest.
A decoder that generates text one token at a time must not: when it predicts
token t it may only use tokens 0..t. Masked self-attention adds a mask M to
the scaled similarities before the softmax:

    MaskedAttention(Q, K, V, M) = softmax(Q K^T / sqrt(d_k) + M) V

where M is 0 where attention is allowed and -inf where it is not. Since
exp(-inf) = 0, a masked position gets EXACTLY zero attention weight, and the
remaining weights of the row still sum to 1.

Convention of this course (the same as ``torch.nn.MultiheadAttention``'s
``attn_mask`` and ``key_padding_mask``, and the OPPOSITE of
``torch.nn.functional.scaled_dot_product_attention``):

    a boolean mask is True where attention is NOT allowed.

Two masks you will use everywhere:

- causal mask (size, size): True strictly above the diagonal, so query i
  cannot see keys j > i::

      [[F, T, T],
       [F, F, T],
       [F, F, F]]

- padding mask (B, max_len): sentences in a batch have different lengths and
  are padded to max_len; True marks the padding, which no query should attend
  to. Position j of sentence b is padding when j >= lengths[b].

What to fill the masked scores with:

- ``float("-inf")`` or ``torch.finfo(scores.dtype).min``: correct in every
  dtype, float16 included;
- a large finite number such as ``-1e9`` (the course's lesson code): correct
  in float32 and float64 (exp(-1e9 - max) is exactly 0), and it gets full
  marks here, with a warning: -1e9 does not fit in float16 (largest 65504),
  so ``masked_fill`` raises "value cannot be converted to type c10::Half
  without overflow" under fp16 autocast, and exercise 8's AMP training
  fails on it;
- not 0 (exp(0) = 1 gives masked keys weight) and not a moderately negative
  number such as -100 (the weight is tiny but not exactly zero).

Usual mistakes:
- the mask inverted (True = allowed) or ``torch.tril`` where ``torch.triu``
  was meant, or ``diagonal=0``, which hides each token from itself;
- building the mask on the CPU while the scores live on the GPU: always pass
  the ``device`` of the input tensors.
"""

import math

import torch
import torch.nn as nn


def causal_mask(size, device=None):
    """Mask that stops each position from attending to later positions.

    Args:
        size: sequence length L.
        device: where to build the mask (the device of your activations).

    Returns:
        BoolTensor (L, L), True strictly above the diagonal (not allowed).
    """
    # BEGIN SOLUTION
    ones = torch.ones(size, size, dtype=torch.bool, device=device)  # (L, L)
    return torch.triu(ones, diagonal=1)  # (L, L), True for j > i
    # END SOLUTION


def padding_mask(lengths, max_len):
    """Mask that hides the padding at the end of each sequence.

    Args:
        lengths: LongTensor (B,), the true length of each sequence.
        max_len: padded length of the batch.

    Returns:
        BoolTensor (B, max_len) on lengths.device, True at positions
        >= lengths[b] (padding, not allowed).
    """
    # BEGIN SOLUTION
    positions = torch.arange(max_len, device=lengths.device)  # (max_len,)
    return positions.unsqueeze(0) >= lengths.unsqueeze(1)  # (B, max_len)
    # END SOLUTION


def masked_attention(q, k, v, mask=None):
    """softmax(q k^T / sqrt(d_k) + M) v, with M = -inf where mask is True.

    Args:
        q: queries, (..., Lq, d_k).
        k: keys, (..., Lk, d_k).
        v: values, (..., Lk, d_v).
        mask: optional BoolTensor broadcastable to (..., Lq, Lk);
            True = attention NOT allowed.

    Returns:
        (output, weights): output (..., Lq, d_v), weights (..., Lq, Lk) with
        exactly 0 at the masked positions.
    """
    # BEGIN SOLUTION
    d_k = q.size(-1)

    # 1. Scaled similarities, as in exercise 1.
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d_k)  # (..., Lq, Lk)

    # 2. Forbidden positions get -inf, so that exp(-inf) = 0 after the softmax.
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))  # (..., Lq, Lk)

    # 3. Percentages over the allowed keys, then the weighted average of values.
    weights = torch.softmax(scores, dim=-1)  # (..., Lq, Lk)
    output = torch.matmul(weights, v)  # (..., Lq, d_v)
    return output, weights
    # END SOLUTION


class MaskedSelfAttention(nn.Module):
    """Self-attention with an optional mask (e.g. ``causal_mask(L)``).

    Attributes:
        W_q, W_k, W_v: nn.Linear(d_model, d_model, bias=False).
    """

    def __init__(self, d_model):
        super().__init__()
        # BEGIN SOLUTION
        self.W_q = nn.Linear(d_model, d_model, bias=False)
        self.W_k = nn.Linear(d_model, d_model, bias=False)
        self.W_v = nn.Linear(d_model, d_model, bias=False)
        # END SOLUTION

    def forward(self, x, mask=None):
        """MaskedAttention(W_q(x), W_k(x), W_v(x), mask).

        Args:
            x: token encodings, (..., L, d_model).
            mask: optional BoolTensor broadcastable to (..., L, L),
                True = not allowed.

        Returns:
            (..., L, d_model).
        """
        # BEGIN SOLUTION
        q = self.W_q(x)  # (..., L, d_model)
        k = self.W_k(x)  # (..., L, d_model)
        v = self.W_v(x)  # (..., L, d_model)
        output, _ = masked_attention(q, k, v, mask)  # (..., L, d_model)
        return output
        # END SOLUTION
