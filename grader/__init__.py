"""attn-grade: auto-graded exercises for a PyTorch course on attention."""

__version__ = "0.1.0"


def check(exercise, **options):
    """Grade the code run in this Jupyter/Colab kernel for `exercise`
    (see grader.notebook.check); imported lazily to keep `import grader` light."""
    from grader.notebook import check as _check

    return _check(exercise, **options)
