"""Exit codes and the one error helper of the CLI."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What `attn-grade` returns to the shell (documented in the README)."""

    ALL_PASSED = 0      # every graded exercise passed (or the command succeeded)
    SOME_FAILED = 1     # grading ran, and at least one exercise lost points
    USAGE_ERROR = 2     # bad command line or unusable input (no such exercise, path...)
    INTERNAL_ERROR = 3  # a bug in the grader itself


class GraderError(Exception):
    """A problem with the input that deserves a one-line explanation,
    never a traceback (missing submission, unknown exercise...)."""

    exit_code = ExitCode.USAGE_ERROR

    def __init__(self, message: str, *, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint


class InternalError(GraderError):
    """Something in the harness broke (a hidden test failed to collect...)."""

    exit_code = ExitCode.INTERNAL_ERROR
