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
    # TODO: Implement for Exercise 2.
    raise NotImplementedError("Exercise 2: causal_mask")


def padding_mask(lengths, max_len):
    """Mask that hides the padding at the end of each sequence.

    Args:
        lengths: LongTensor (B,), the true length of each sequence.
        max_len: padded length of the batch.

    Returns:
        BoolTensor (B, max_len) on lengths.device, True at positions
        >= lengths[b] (padding, not allowed).
    """
    # TODO: Implement for Exercise 2.
    raise NotImplementedError("Exercise 2: padding_mask")


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
    # TODO: Implement for Exercise 2.
    raise NotImplementedError("Exercise 2: masked_attention")


class MaskedSelfAttention(nn.Module):
    """Self-attention with an optional mask (e.g. ``causal_mask(L)``).

    Attributes:
        W_q, W_k, W_v: nn.Linear(d_model, d_model, bias=False).
    """

    def __init__(self, d_model):
        super().__init__()
        # TODO: Implement for Exercise 2.
        raise NotImplementedError("Exercise 2: MaskedSelfAttention.__init__")

    def forward(self, x, mask=None):
        """MaskedAttention(W_q(x), W_k(x), W_v(x), mask).

        Args:
            x: token encodings, (..., L, d_model).
            mask: optional BoolTensor broadcastable to (..., L, L),
                True = not allowed.

        Returns:
            (..., L, d_model).
        """
        # TODO: Implement for Exercise 2.
        raise NotImplementedError("Exercise 2: MaskedSelfAttention.forward")
