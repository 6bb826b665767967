"""attn-grade: auto-graded exercises for a PyTorch course on attention."""

from grader.version import __version__

__all__ = ["__version__", "check"]


def check(exercise, **options):
    """Grade the code run in this Jupyter/Colab kernel for `exercise`
    (see grader.notebook.check); imported lazily to keep `import grader` light."""
    from grader.notebook import check as _check

    return _check(exercise, **options)
