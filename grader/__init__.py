"""attn-grade: auto-graded exercises for a PyTorch course on attention."""

__version__ = "0.1.0"
