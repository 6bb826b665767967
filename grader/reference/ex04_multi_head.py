"""Exercise 4 as the grader provides it: F.multi_head_attention_forward
(nn.MultiheadAttention's computation) on the contract's four projections."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from grader.reference import explained
from grader.reference._attend import merged_mask
from grader.reference.plain import require_plain

__all__ = ["MultiHeadAttention"]


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, bias=True):
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.d_k = d_model // num_heads
        self.W_q = nn.Linear(d_model, d_model, bias=bias)
        self.W_k = nn.Linear(d_model, d_model, bias=bias)
        self.W_v = nn.Linear(d_model, d_model, bias=bias)
        self.W_o = nn.Linear(d_model, d_model, bias=bias)

    def _in_proj_bias(self):
        """W_q, W_k, W_v's biases stacked (nn.MultiheadAttention's in_proj_bias)."""
        if self.W_q.bias is None:
            return None
        return torch.cat([self.W_q.bias, self.W_k.bias, self.W_v.bias])

    @explained("exercise 4 MultiHeadAttention")
    def forward(self, query, key, value, attn_mask=None, key_padding_mask=None):
        require_plain(query, key, value, attn_mask, key_padding_mask, *self.parameters())
        out, weights = F.multi_head_attention_forward(
            query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1),
            query.shape[-1], self.num_heads, None, self._in_proj_bias(), None, None, False, 0.0,
            self.W_o.weight, self.W_o.bias, training=self.training,
            need_weights=True, attn_mask=merged_mask(attn_mask, key_padding_mask, self.num_heads,
                                                     query.shape[1], key.shape[1]),
            use_separate_proj_weight=True, q_proj_weight=self.W_q.weight,
            k_proj_weight=self.W_k.weight, v_proj_weight=self.W_v.weight,
            average_attn_weights=False)
        return out.transpose(0, 1), weights.reshape(query.shape[0], self.num_heads, *weights.shape[-2:])
