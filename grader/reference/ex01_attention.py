"""Exercise 1 as the grader provides it: F.scaled_dot_product_attention."""

from __future__ import annotations

import torch.nn as nn

from grader.reference import explained
from grader.reference._attend import attend

__all__ = ["scaled_dot_product_attention", "SelfAttention"]


@explained("exercise 1 scaled_dot_product_attention")
def scaled_dot_product_attention(q, k, v):
    return attend(q, k, v)


class SelfAttention(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.W_q = nn.Linear(d_model, d_model, bias=False)
        self.W_k = nn.Linear(d_model, d_model, bias=False)
        self.W_v = nn.Linear(d_model, d_model, bias=False)

    @explained("exercise 1 SelfAttention")
    def forward(self, x):
        return attend(self.W_q(x), self.W_k(x), self.W_v(x))[0]
