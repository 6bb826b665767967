"""One call of F.scaled_dot_product_attention that also returns the weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from grader.reference.plain import require_plain


def bool_mask(mask: torch.Tensor | None, what: str = "mask") -> torch.Tensor | None:
    """The contract's mask (bool, True = NOT allowed); an integer 0/1 mask
    is read the same way, an additive float mask is refused with a message."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"the {what} must be a bool tensor (True = not allowed), got "
                        f"{type(mask).__name__}")
    if mask.dtype == torch.bool:
        return mask
    if mask.is_floating_point() or mask.is_complex():
        raise TypeError(f"the {what} must be a bool tensor, True where attention is NOT allowed "
                        f"(the contract), got {str(mask.dtype).removeprefix('torch.')}")
    return mask != 0


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None):
    """(output, weights) of softmax(q kᵀ / sqrt(d_k)) v with the contract's
    mask, from ONE call of the built-in: the values are extended with an
    identity matrix, so the extra output columns are the weights themselves."""
    require_plain(q, k, v, mask)
    lk = k.shape[-2]
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    eye = torch.eye(lk, dtype=v.dtype, device=v.device).expand(*batch, lk, lk)
    values = torch.cat([v.expand(*batch, *v.shape[-2:]), eye], dim=-1)
    query = q.expand(*batch, *q.shape[-2:])
    key = k.expand(*batch, *k.shape[-2:])
    blocked = bool_mask(mask)
    allowed = None if blocked is None else ~blocked      # the built-in's bool mask: True = allowed
    out = F.scaled_dot_product_attention(query, key, values, attn_mask=allowed)
    d_v = v.shape[-1]
    return out[..., :d_v], out[..., d_v:]


def merged_mask(attn_mask, key_padding_mask, num_heads: int, lq: int, lk: int):
    """attn_mask ((Lq, Lk) or (B * num_heads, Lq, Lk)) | key_padding_mask
    (B, Lk) as one bool mask (B * num_heads, Lq, Lk), batch-major: what
    nn.MultiheadAttention builds inside.  Passing it merged skips PyTorch's
    key-padding check, whose first call imports sympy (seconds)."""
    attn_mask = bool_mask(attn_mask, "attn_mask")
    pad = bool_mask(key_padding_mask, "key_padding_mask")
    if pad is None:
        return attn_mask
    if pad.dim() != 2 or pad.shape[1] != lk:
        raise ValueError(f"a key padding mask is (B, Lk) = (B, {lk}) here, True at padding; "
                         f"got shape {tuple(pad.shape)}")
    batch = pad.shape[0]
    mask = pad[:, None, None, :].expand(batch, num_heads, lq, lk).reshape(batch * num_heads, lq, lk)
    return mask if attn_mask is None else mask | attn_mask
