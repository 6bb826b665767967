"""Where student code runs: `auto`, `cpu` or `cuda`, resolved to a real device."""

from __future__ import annotations

from grader.errors import GraderError


def resolve_device(device: str) -> str:
    """`cpu` or `cuda` for a `--device auto|cpu|cuda` option; torch is only
    imported when the answer depends on it."""
    if device == "cpu":
        return "cpu"
    import torch

    if device == "cuda":
        if not torch.cuda.is_available():
            raise GraderError("--device cuda, but no CUDA GPU is available here",
                              hint="use --device cpu (or auto)")
        return "cuda"
    return "cuda" if torch.cuda.is_available() else "cpu"
