"""Reference computations, done by the judge in float64 from the paper's
equations and PyTorch's own modules.  Never imports student code."""

from __future__ import annotations

import math

import torch


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
              *, scale: float | None = None, softmax_dim: int = -1, mask_fill: float = float("-inf"),
              mask_after_softmax: bool = False, apply_softmax: bool = True):
    """softmax(q kᵀ / sqrt(d_k)) v in float64, with a bool mask True where NOT allowed.

    The keyword arguments produce the usual mistakes, for diagnosis."""
    q64, k64, v64 = (t.detach().to("cpu", torch.float64) for t in (q, k, v))
    d_k = q.shape[-1]
    scale = 1.0 / math.sqrt(d_k) if scale is None else scale
    scores = q64 @ k64.transpose(-2, -1) * scale
    if mask is not None and not mask_after_softmax:
        scores = scores.masked_fill(mask.to("cpu"), mask_fill)
    weights = torch.softmax(scores, dim=softmax_dim) if apply_softmax else scores
    if mask is not None and mask_after_softmax:
        weights = weights.masked_fill(mask.to("cpu"), 0.0)
    return weights @ v64, weights


def self_attention(x: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor, w_v: torch.Tensor,
                   mask: torch.Tensor | None = None, **mistake):
    """Attention of x W_qᵀ, x W_kᵀ, x W_vᵀ (nn.Linear stores weights as (out, in))."""
    x64 = x.detach().to("cpu", torch.float64)
    q = x64 @ w_q.to(torch.float64).T
    k = x64 @ w_k.to(torch.float64).T
    v = x64 @ w_v.to(torch.float64).T
    return attention(q, k, v, mask, **mistake)


def torch_single_head(x_q: torch.Tensor, x_kv: torch.Tensor, w_q, w_k, w_v,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    """PyTorch's nn.MultiheadAttention with one head, no bias and an identity
    output projection: the same function as the course's attention."""
    d = x_q.shape[-1]
    mha = torch.nn.MultiheadAttention(d, 1, bias=False, batch_first=True).to(torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([w_q, w_k, w_v]).to(torch.float64))
        mha.out_proj.weight.copy_(torch.eye(d, dtype=torch.float64))
    mha.train()  # the eval fast path changes masked outputs; train with dropout 0 does not
    lead = x_q.shape[:-2]
    xq = x_q.detach().to(torch.float64).reshape(-1, *x_q.shape[-2:])
    xk = x_kv.detach().to(torch.float64).reshape(-1, *x_kv.shape[-2:])
    out, _ = mha(xq, xk, xk, attn_mask=mask, need_weights=False)
    return out.reshape(*lead, *out.shape[-2:])


def causal_mask(size: int, device=None) -> torch.Tensor:
    return torch.triu(torch.ones(size, size, dtype=torch.bool, device=device), diagonal=1)


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    return torch.arange(max_len, device=lengths.device)[None, :] >= lengths[:, None]
