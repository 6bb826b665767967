"""Exit codes, the input-error exception and the one error helper of the CLI."""

from __future__ import annotations

import functools
import sys
import traceback
from enum import IntEnum

import click


class ExitCode(IntEnum):
    """What `attn-grade` returns to the shell (documented in the README)."""

    ALL_PASSED = 0      # every graded exercise passed (or the command succeeded)
    SOME_FAILED = 1     # grading ran, and at least one exercise lost points
    USAGE_ERROR = 2     # bad command line or unusable input (no such exercise, path...)
    INTERNAL_ERROR = 3  # a bug in the grader itself, or its own files changed


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


def fail(message: str, *, hint: str = "", code: ExitCode = ExitCode.USAGE_ERROR) -> None:
    """The one way the CLI reports a problem: one line (plus a hint), an exit code."""
    click.secho(f"attn-grade: error: {message}", fg="red", err=True)
    if hint:
        click.echo(f"  hint: {hint}", err=True)
    sys.exit(int(code))


def handle_errors(func):
    """Wrap a command: known problems become `fail(...)`, a grader bug says so
    (with its traceback) and exits INTERNAL_ERROR."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except GraderError as exc:
            fail(exc.message, hint=exc.hint, code=exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", code=ExitCode.INTERNAL_ERROR)
        except (click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception:  # noqa: BLE001 - a grader bug: say so, with the traceback
            click.echo(traceback.format_exc(), err=True)
            fail("internal error in attn-grade (a bug: please report it with the traceback above)",
                 code=ExitCode.INTERNAL_ERROR)
    return wrapper
