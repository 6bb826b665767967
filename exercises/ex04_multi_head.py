"""Exercise 4 · Multi-head attention.

One attention head computes one set of percentages per query. Section 3.2.2
of the paper runs h heads in parallel, each on its own d_k = d_model / h
slice of the projections, so that different heads can attend to different
things (one to the previous word, one to the verb, ...):

    head_i   = Attention(Q W_i^Q, K W_i^K, V W_i^V)
    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O

In practice the h small projections W_i^Q (d_model x d_k) are stacked into one
``nn.Linear(d_model, d_model)``: head i uses the output features
``i*d_k : (i+1)*d_k`` of W_q, W_k and W_v (the same layout as the chunks of
``nn.MultiheadAttention``'s ``in_proj_weight``). Splitting into heads is a
reshape, not new weights:

    (B, L, D)  --view-->  (B, L, H, d_k)  --transpose(1, 2)-->  (B, H, L, d_k)

Attention then runs on all heads at once (the head dimension is just another
batch dimension), the heads are put back side by side in order, and W_o mixes
them into the final d_model features:

    (B, H, Lq, d_k) --transpose(1, 2)--> (B, Lq, H, d_k) --reshape--> (B, Lq, D) --W_o--> (B, Lq, D)

Masks (True = not allowed), broadcast to the scores (B, H, Lq, Lk):

    attn_mask         (Lq, Lk)  -> used as is, the same for every batch and head
    key_padding_mask  (B, Lk)   -> (B, 1, 1, Lk), the same for every head and query

Usual mistakes:
- ``x.view(B, H, L, d_k)`` straight away: it cuts the memory in the wrong
  order and mixes tokens into heads; view as (B, L, H, d_k), then transpose;
- ``.view`` after ``transpose`` without ``.contiguous()`` (or use ``reshape``);
- scaling by sqrt(d_model) instead of sqrt(d_k), the width of ONE head;
- averaging the weights over the heads: return them per head, (B, H, Lq, Lk).
"""

import torch.nn as nn

from ex02_masks import masked_attention


class MultiHeadAttention(nn.Module):
    """h heads of scaled dot-product attention, concatenated and mixed by W_o.

    Args:
        d_model: model width D; must be divisible by num_heads.
        num_heads: number of heads H.
        bias: whether the four projections have a bias.

    Attributes:
        num_heads: H.
        d_k: D // H, the width of one head.
        W_q, W_k, W_v, W_o: nn.Linear(d_model, d_model, bias=bias).
    """

    def __init__(self, d_model, num_heads, bias=True):
        super().__init__()
        # TODO: Implement for Exercise 4.
        raise NotImplementedError("Exercise 4: MultiHeadAttention.__init__")

    def forward(self, query, key, value, attn_mask=None, key_padding_mask=None):
        """Concat(head_1, ..., head_h) W_o.

        Args:
            query: (B, Lq, D).
            key: (B, Lk, D).
            value: (B, Lk, D).
            attn_mask: optional BoolTensor (Lq, Lk), True = not allowed
                (e.g. a causal mask).
            key_padding_mask: optional BoolTensor (B, Lk), True at padding.

        Returns:
            (output, weights): output (B, Lq, D), weights per head
            (B, H, Lq, Lk).
        """
        # TODO: Implement for Exercise 4.
        raise NotImplementedError("Exercise 4: MultiHeadAttention.forward")
