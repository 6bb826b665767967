"""Which device student code runs on."""

from __future__ import annotations

from grader.errors import GraderError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> str:
    """"auto" becomes "cuda" when a CUDA GPU is available, else "cpu"."""
    if device == "cpu":
        return "cpu"
    import torch

    if device == "cuda":
        if not torch.cuda.is_available():
            raise GraderError("--device cuda, but no CUDA GPU is available here",
                              hint="use --device cpu (or auto)")
        return "cuda"
    return "cuda" if torch.cuda.is_available() else "cpu"
