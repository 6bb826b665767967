"""One cause, said once: failing tests grouped for display.

Two failing tests belong together when they fail with the same diagnosed
mistake (the same hint on a `failed` test: "the scale is missing" seen by
three properties), or with the very same error (same status, message and
traceback: a syntax error, a missing name, a wrong signature seen by every
test).  Each group is shown once, with one example; `details` shows every
failing test on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grader.results import Status, TestResult

# Default length limits of one failure's texts (a bug fits in ~40 lines).
MAX_MESSAGE_LINES = 8
MAX_EXAMPLE_LINES = 6
MAX_TRACEBACK_LINES = 10


@dataclass
class FailureGroup:
    tests: list[TestResult] = field(default_factory=list)
    by_cause: bool = False        # grouped by a shared diagnosed mistake (its hint)

    @property
    def first(self) -> TestResult:
        return self.tests[0]

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tests]

    @property
    def points_lost(self) -> float:
        return sum(t.max_points - t.points for t in self.tests)

    @property
    def cause(self) -> str:
        return self.first.hint if self.by_cause else ""


def _key(test: TestResult) -> tuple:
    if test.status is Status.FAILED and test.hint:
        return ("cause", test.hint)
    return ("same", test.status, test.message, test.traceback, test.hint)


def failure_groups(tests: list[TestResult], *, details: bool = False) -> list[FailureGroup]:
    """The failing tests of one exercise, grouped, in order of first appearance."""
    failing = [t for t in tests if t.status is not Status.PASSED]
    if details:
        return [FailureGroup([t]) for t in failing]
    groups: dict[tuple, FailureGroup] = {}
    for test in failing:
        key = _key(test)
        group = groups.setdefault(key, FailureGroup(by_cause=key[0] == "cause"))
        group.tests.append(test)
    return list(groups.values())


def shorten(text: str, max_lines: int | None, *, tail: bool = False) -> tuple[str, int]:
    """`text` cut to `max_lines` lines (the last ones with `tail`), and how
    many lines were left out (None: no limit)."""
    lines = text.rstrip("\n").splitlines()
    if max_lines is None or len(lines) <= max_lines:
        return "\n".join(lines), 0
    kept = lines[-max_lines:] if tail else lines[:max_lines]
    return "\n".join(kept), len(lines) - max_lines
