"""Exceptions that decide a test's status.

The collector maps an exception to a `Status` through its `status`
attribute; this is the only place that mapping is written down.
"""

from __future__ import annotations

from grader.results import Status


class StudentAbort(BaseException):
    """Student code cannot be graded further in this test.

    A BaseException on purpose: hypothesis does not shrink it (shrinking a
    timeout would take minutes) and a test cannot swallow it by accident.
    """

    status = Status.ERROR

    def __init__(self, message: str, *, traceback: str = "", where=None, label: str = ""):
        super().__init__(message)
        self.message = message
        self.traceback = traceback
        self.where = tuple(where) if where else None
        self.label = label


class StudentNotImplemented(StudentAbort):
    status = Status.NOT_IMPLEMENTED


class StudentForbidden(StudentAbort):
    status = Status.FORBIDDEN


class StudentTimeout(StudentAbort):
    status = Status.TIMEOUT


class StudentCrashed(StudentAbort):
    status = Status.CRASHED


class StudentLoadError(StudentAbort):
    """The file cannot be imported (syntax error, import error at top level)."""

    status = Status.ERROR


class NotRun(StudentAbort):
    """Deliberately not run (e.g. `--no-train`): shown, never awarded."""

    status = Status.NOT_RUN


class StudentError(Exception):
    """An exception raised by student code.  An Exception, so hypothesis
    shrinks the input that raised it."""

    status = Status.ERROR

    def __init__(self, message: str, *, type_name: str = "", traceback: str = "", where=None,
                 label: str = ""):
        super().__init__(f"{type_name}: {message}" if type_name else message)
        self.message = message
        self.type_name = type_name
        self.traceback = traceback
        self.where = tuple(where) if where else None
        self.label = label


class PropertyFailure(AssertionError):
    """A property of the exercise does not hold: wrong values.

    `hint` names the usual mistake; `max_error` is the largest absolute
    difference when values were compared; `counterexample` and `repro`: the
    tensors of that comparison and a script rebuilding it
    (grader/counterexample.py), when known.
    """

    status = Status.FAILED

    def __init__(self, message: str, *, hint: str = "", max_error: float | None = None,
                 counterexample: dict | None = None, repro: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.max_error = max_error
        self.counterexample = counterexample
        self.repro = repro


class AbortedInSetup(Exception):
    """Carries a StudentAbort out of a fixture: pytest records only Exceptions
    raised during setup (a BaseException there corrupts its setup state).
    The collector unwraps it."""

    def __init__(self, abort: StudentAbort):
        super().__init__(abort.message)
        self.abort = abort
