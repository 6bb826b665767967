"""Trusted procedures for exercise 2's hidden tests (run inside the worker)."""

from __future__ import annotations

import torch


def warm_device(worker, device: str) -> str:
    """Run a few mask-building kernels on `device` once, before student code does.

    The first meta-device kernel written in Python (triu, comparisons) imports
    torch's symbolic-shape machinery, and the first CUDA kernel creates the
    CUDA context: seconds of start-up that belong to the grader, not to the
    student's per-call time limit."""
    ones = torch.ones(3, 3, dtype=torch.bool, device=device)
    torch.triu(ones, diagonal=1)
    torch.tril(ones)
    lengths = torch.ones(2, dtype=torch.long, device=device)
    _ = torch.arange(3, device=device)[None, :] >= lengths[:, None]
    return str(ones.device)
