"""The grader's version (one place; `grader.__version__` re-exports it)."""

__version__ = "0.1.0"
