"""Grading in isolation, and the one line about the student's own stack.

The policy (issue "one bug, one penalty"):

- What costs points: each exercise's hidden tests run the student's file for
  that exercise on the grader's own earlier exercises (grader/reference/),
  so a bug costs points once, in the exercise where it is
  (`--dependencies reference`, the default).  Exercise 8's timed training
  check is the exception by design: it trains the student's whole stack.
- What is only reported: whether the exercise also passes on the student's
  own earlier files, in one non-scoring line per exercise (`own_stack_line`).
  That line is the only place that says "fix exercise N first", and it says
  so exactly when exercise N fails its own tests in the same run (or in a
  quick pre-check of it) and the failures come through it; an earlier
  exercise that is merely not implemented yet is named as such.
- `--dependencies own` grades on the student's files end to end, as before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from grader import registry
from grader.results import Status, TestResult

MODES = ("reference", "own")
# Hypothesis examples per property of the non-scoring run on the student's
# own earlier files, and of a quick pre-check of an earlier exercise that is
# not graded in this run.
QUICK_EXAMPLES = 3

_UNFINISHED = (Status.NOT_IMPLEMENTED, Status.NOT_RUN)


def short(number: int) -> str:
    return f"ex{number:02d}"


def _numbers(numbers: list[int]) -> str:
    words = [str(n) for n in numbers]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def fix_first(numbers: list[int]) -> str:
    """The one sentence that sends a student to an earlier exercise."""
    plural = "s" if len(numbers) > 1 else ""
    return f"fix exercise{plural} {_numbers(numbers)} first"


def _fail_their_own(numbers: list[int]) -> str:
    if len(numbers) == 1:
        return f"exercise {numbers[0]} fails its own tests"
    return f"exercises {_numbers(numbers)} fail their own tests"


def failing_their_own(imports: list[int], statuses: dict[int, Status]) -> list[int]:
    return [n for n in imports if statuses.get(n, Status.PASSED) not in (Status.PASSED, *_UNFINISHED)]


def not_implemented(imports: list[int], statuses: dict[int, Status]) -> list[int]:
    return [n for n in imports if statuses.get(n) is Status.NOT_IMPLEMENTED]


def imported_exercises(submission, exercise: registry.Exercise) -> list[int]:
    """Earlier exercises the student's file imports, directly or through
    another exercise file of theirs."""
    if not submission.has(exercise.module):
        return []
    found = (registry.by_module(m) for m in submission.imports_closure(exercise.module))
    return sorted(e.number for e in found if e is not None and e.number != exercise.number)


def _failing(tests: list[TestResult]) -> list[TestResult]:
    return [t for t in tests if t.status not in (Status.PASSED, Status.NOT_RUN)]


@dataclass
class OwnStack:
    """How an exercise fares on the student's own earlier files (not scored)."""

    exercise: int
    mode: str                              # the run's --dependencies
    imports: list[int]                     # the student's earlier exercises in play
    statuses: dict[int, str] = field(default_factory=dict)   # their own verdicts
    ran: bool = False                      # the exercise was run on the student's own files
    failing: int = 0                       # properties failing there
    total: int = 0
    extra: int = 0                         # ... of which pass on the grader's earlier exercises
    blame: list[int] = field(default_factory=list)
    line: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["statuses"] = {str(k): v for k, v in self.statuses.items()}
        return d


def own_stack_line(exercise: registry.Exercise, mode: str, imports: list[int],
                   statuses: "dict[int, Status] | Callable[[int], Status]",
                   own_tests: list[TestResult] | None,
                   graded_tests: list[TestResult]) -> OwnStack:
    """The non-scoring line for `exercise`.  `own_tests`: its tests run on
    the student's own earlier files (None: not run; in `own` mode the graded
    run is that run); `statuses`: the earlier exercises' own verdicts, a
    dict or a function asked only when a failure needs explaining (a quick
    pre-check may stand behind it)."""
    summary = OwnStack(exercise.number, mode, list(imports))
    if not imports:
        return summary
    lookup = statuses.get if isinstance(statuses, dict) else statuses
    files = ", ".join(short(n) for n in imports)

    def verdicts() -> tuple[list[int], list[int]]:
        known = {n: lookup(n) for n in imports}
        summary.statuses = {n: Status(s).value for n, s in known.items() if s is not None}
        return failing_their_own(imports, known), not_implemented(imports, known)

    if mode == "own":
        failing = _failing(graded_tests)
        if not failing:
            return summary
        broken, missing = verdicts()
        summary.ran, summary.failing, summary.total = True, len(failing), len(graded_tests)
        if broken:
            summary.blame = broken
            summary.line = (f"{exercise.file} runs on your {files}, and {_fail_their_own(broken)}: "
                            f"the failures may come from there — {fix_first(broken)}.")
        elif missing:
            summary.line = (f"{exercise.file} runs on your {', '.join(short(n) for n in missing)}, "
                            "not implemented yet: the failures may come from there.")
        return summary
    if own_tests is None:
        return summary
    ran = [t for t in own_tests if t.status is not Status.NOT_RUN]
    failing = _failing(ran)
    graded_failing = {t.name for t in _failing(graded_tests)}
    extra = [t for t in failing if t.name not in graded_failing]
    summary.ran, summary.failing, summary.total, summary.extra = True, len(failing), len(ran), len(extra)
    head = f"Not scored — with your {files}:"
    if not ran:
        return summary
    if not extra:
        summary.line = (f"{head} passes too." if not failing else
                        f"{head} the same properties fail, none more.")
        return summary
    broken, missing = verdicts()
    if broken:
        summary.blame = broken
        summary.line = f"{head} {len(failing)} of {len(ran)} properties fail — {fix_first(broken)}."
    elif missing:
        summary.line = (f"{head} {len(failing)} of {len(ran)} properties fail: your "
                        f"{', '.join(short(n) for n in missing)} "
                        f"{'is' if len(missing) == 1 else 'are'} not implemented yet (this exercise "
                        "is graded on the grader's meanwhile).")
    else:
        summary.line = (f"{head} {len(failing)} of {len(ran)} properties fail, although "
                        f"{'it passes' if len(imports) == 1 else 'they pass'} "
                        f"{'its' if len(imports) == 1 else 'their'} own tests: check what "
                        f"{exercise.file} passes to {'it' if len(imports) == 1 else 'them'} "
                        "(the contract's arguments and mask shapes).")
    return summary


def training_check_blame(imports: list[int], statuses: dict[int, Status]) -> str:
    """What exercise 8's failed training check adds: it trains the student's
    own stack, so an earlier exercise that fails its own tests is named."""
    broken = failing_their_own(imports, statuses)
    missing = not_implemented(imports, statuses)
    if broken:
        return (f"The check trains your own {', '.join(short(n) for n in imports)}, and "
                f"{_fail_their_own(broken)} — {fix_first(broken)}.")
    if missing:
        return (f"The check trains your own {', '.join(short(n) for n in imports)}; "
                f"{', '.join(short(n) for n in missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not implemented yet.")
    return ""
