"""One cause, said once: failing tests grouped for display.

Two failing tests belong together when they fail with the same diagnosed
mistake (the same hint on a `failed` test: "the scale is missing" seen by
three properties), when the student's code raised the same kind of error at
the same line (a `.T` seen by seven properties, each with other sizes in its
message), or with the very same error (same status, message and traceback:
a syntax error, a missing name, a wrong signature seen by every test).  Each
group is shown once, with one example.

By default one group is shown in full (the likeliest single cause: a
diagnosed mistake seen by the most properties), and the others in a line or
two each, so that one bug, which real hidden tests see in several ways, fits
in about 40 lines; `details` shows every failing test in full.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from grader.results import Status, TestResult

# Default length limits of one failure's texts (a bug fits in ~40 lines).
MAX_MESSAGE_LINES = 8
MAX_EXAMPLE_LINES = 6
MAX_TRACEBACK_LINES = 10
# Groups listed in brief after the one shown in full; more are counted.
MAX_BRIEF_GROUPS = 6


@dataclass
class FailureGroup:
    tests: list[TestResult] = field(default_factory=list)
    by_cause: bool = False        # grouped by a shared diagnosed mistake (its hint)
    raised_at: str = ""           # grouped by where the student's code raised ("file, line N")

    @property
    def first(self) -> TestResult:
        """The test shown for the whole group: the one with the smallest
        failing case (the fewest numbers to read), else the first."""
        return min(self.tests, key=_case_size)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tests]

    @property
    def points_lost(self) -> float:
        return sum(t.max_points - t.points for t in self.tests)

    @property
    def cause(self) -> str:
        return self.first.hint if self.by_cause else ""


# A traceback frame as the worker writes it, a notebook's with its cell:
# `File "ex01_attention.py", line 13, in f` / `File "ex01.ipynb", cell 4, line 2, in f`
_FRAME = re.compile(r'File "([^"]+)", ((?:cell \d+, )?line \d+)')


def raised_at(test: TestResult) -> str:
    """Where the student's code raised ("ex01_attention.py, line 13"): the
    last frame of its traceback, or "" without one."""
    frames = _FRAME.findall(test.traceback or "")
    return f"{frames[-1][0]}, {frames[-1][1]}" if frames else ""


def error_kind(test: TestResult) -> str:
    """`RuntimeError` of "RuntimeError: The size of tensor a (2) must ..."."""
    head = test.message.split(":", 1)[0].strip()
    return head if head.isidentifier() else ""


def traceback_body(test: TestResult) -> str:
    """The traceback without its last line(s) when they only repeat the
    message shown just above it."""
    text, message = (test.traceback or "").rstrip(), test.message.strip()
    if message and text.endswith(message) and text[:-len(message)].strip():
        return text[:-len(message)].rstrip()
    return text


def _case_size(test: TestResult) -> int:
    case = test.counterexample or {}
    shapes = [value.get("shape") for part in ("inputs", "got") for value in (case.get(part) or {}).values()
              if isinstance(value, dict)]
    return sum(math.prod(shape) for shape in shapes if isinstance(shape, list)) if case else 1 << 62


def _key(test: TestResult) -> tuple:
    if test.status is Status.FAILED and test.hint:
        return ("cause", test.hint)
    where = raised_at(test) if test.status is Status.ERROR else ""
    if where and error_kind(test):
        return ("raised", test.status, error_kind(test), where, test.hint)
    return ("same", test.status, test.message, test.traceback, test.hint)


def failure_groups(tests: list[TestResult], *, details: bool = False) -> list[FailureGroup]:
    """The failing tests of one exercise, grouped, in order of first appearance."""
    failing = [t for t in tests if t.status is not Status.PASSED]
    if details:
        return [FailureGroup([t]) for t in failing]
    groups: dict[tuple, FailureGroup] = {}
    for test in failing:
        key = _key(test)
        group = groups.setdefault(key, FailureGroup(
            by_cause=key[0] == "cause" or (key[0] == "raised" and bool(test.hint)),
            raised_at=key[3] if key[0] == "raised" else ""))
        group.tests.append(test)
    return list(groups.values())


def lead_first(groups: list[FailureGroup]) -> list[FailureGroup]:
    """The group to show in full first: a diagnosed cause before an
    undiagnosed failure, then the one seen by the most properties, then the
    earliest."""
    return sorted(groups, key=lambda g: (not g.by_cause, -len(g.tests)))


@dataclass
class FailureView:
    """What a view shows of one exercise's failures."""

    full: list[FailureGroup]          # each in full: cause, property, case, traceback, hint
    brief: list[FailureGroup]         # a line or two each
    hidden: int = 0                   # failing tests in neither (--details shows them)

    @property
    def brief_count(self) -> int:
        return sum(len(g.tests) for g in self.brief)

    def new_hint(self, group: FailureGroup) -> str:
        """A brief group's hint, unless the group in full already said it."""
        hint = group.first.hint
        return "" if self.full and hint == self.full[0].first.hint else hint


def failure_view(tests: list[TestResult], *, details: bool = False) -> FailureView:
    groups = failure_groups(tests, details=details)
    if details:
        return FailureView(groups, [])
    groups = lead_first(groups)
    brief = groups[1:1 + MAX_BRIEF_GROUPS]
    return FailureView(groups[:1], brief, sum(len(g.tests) for g in groups[1 + MAX_BRIEF_GROUPS:]))


def summary(test: TestResult, limit: int = 160) -> str:
    """A failure's message in one short line: its first line up to the first
    "; ", without the tolerance (what differs and by how much)."""
    first = (test.message.strip().splitlines() or [test.status.value])[0]
    first = re.sub(r" \(allowed [^)]*\)", "", first.split("; ", 1)[0])
    return first if len(first) <= limit else first[:limit - 1] + "…"


def shorten(text: str, max_lines: int | None, *, tail: bool = False) -> tuple[str, int]:
    """`text` cut to `max_lines` lines (the last ones with `tail`), and how
    many lines were left out (None: no limit)."""
    lines = text.rstrip("\n").splitlines()
    if max_lines is None or len(lines) <= max_lines:
        return "\n".join(lines), 0
    kept = lines[-max_lines:] if tail else lines[:max_lines]
    return "\n".join(kept), len(lines) - max_lines
