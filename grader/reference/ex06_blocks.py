"""Exercise 6 as the grader provides it: nn.TransformerEncoderLayer /
nn.TransformerDecoderLayer run on the contract's modules' weights."""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from grader.reference import explained
from grader.reference._attend import merged_mask
from grader.reference._layers import builtin_state, call_builtin, unregistered
from grader.reference.ex04_multi_head import MultiHeadAttention

__all__ = ["FeedForward", "EncoderLayer", "DecoderLayer"]


class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.p = dropout

    @explained("exercise 6 FeedForward")
    def forward(self, x):
        return self.linear2(F.dropout(F.relu(self.linear1(x)), self.p, self.training))


class EncoderLayer(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        unregistered(self, "_builtin", nn.TransformerEncoderLayer(
            d_model, num_heads, d_ff, dropout, batch_first=True, device="meta"))
        self._builtin.self_attn.dropout = 0.0  # the contract drops out sub-layer outputs only

    @explained("exercise 6 EncoderLayer")
    def forward(self, x, src_key_padding_mask=None):
        S = x.shape[1]
        return call_builtin(self._builtin, builtin_state(self, "encoder"), self.training, x,
                            src_mask=merged_mask(None, src_key_padding_mask, self.self_attn.num_heads,
                                                 S, S))


class DecoderLayer(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.cross_attn = MultiHeadAttention(d_model, num_heads)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        unregistered(self, "_builtin", nn.TransformerDecoderLayer(
            d_model, num_heads, d_ff, dropout, batch_first=True, device="meta"))
        self._builtin.self_attn.dropout = self._builtin.multihead_attn.dropout = 0.0

    @explained("exercise 6 DecoderLayer")
    def forward(self, x, memory, tgt_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None):
        H, T, S = self.self_attn.num_heads, x.shape[1], memory.shape[1]
        return call_builtin(self._builtin, builtin_state(self, "decoder"), self.training, x, memory,
                            tgt_mask=merged_mask(tgt_mask, tgt_key_padding_mask, H, T, T),
                            memory_mask=merged_mask(None, memory_key_padding_mask, H, T, S))
