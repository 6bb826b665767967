"""The hypothesis strategies (grader/hidden/strategies.py) draw only valid cases.
"""

from __future__ import annotations

import torch

from grader.hidden import strategies as S


def test_masks_never_hide_a_whole_row():
    for seed in range(200):
        for masks in ("attn", "padding", "both"):
            case = S.MultiHeadCase(batch=3, lq=1 + seed % 5, lk=1 + (seed // 5) % 5, num_heads=2, d_k=2,
                                   bias=True, kind="cross", masks=masks,
                                   mask_style="causal" if seed % 2 else "random",
                                   dtype=torch.float64, seed=seed)
            attn_mask, key_padding_mask = case.mask_tensors()
            full = torch.zeros(case.batch, case.lq, case.lk, dtype=torch.bool)
            if attn_mask is not None:
                full |= attn_mask
            if key_padding_mask is not None:
                full |= key_padding_mask[:, None, :]
                assert case.lk == 1 or bool(key_padding_mask.any()), case   # padding really pads
            assert not bool(full.all(-1).any()), case
