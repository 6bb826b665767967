"""The result model: plain dataclasses, separate from how they are shown.

Renderers (grader/render/) only read a `Report`; nothing else formats output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum

SCHEMA_VERSION = 1


class Status(str, Enum):
    """A test's or an exercise's outcome; the values are the JSON identifiers."""

    PASSED = "passed"
    FAILED = "failed"                    # wrong values
    ERROR = "error"                      # exception raised in student code
    NOT_IMPLEMENTED = "not_implemented"  # NotImplementedError: not attempted yet
    TIMEOUT = "timeout"
    CRASHED = "crashed"                  # the worker died (segfault, exit, memory cap)
    FORBIDDEN = "forbidden"              # calls a built-in the contract forbids
    NOT_RUN = "not_run"                  # deliberately skipped (e.g. --no-train)

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.value


# Which non-passing status names an exercise, most serious first.
_EXERCISE_PRECEDENCE = (
    Status.FORBIDDEN, Status.CRASHED, Status.TIMEOUT, Status.ERROR,
    Status.FAILED, Status.NOT_IMPLEMENTED, Status.NOT_RUN,
)


@dataclass
class TestResult:
    name: str
    status: Status
    points: float
    max_points: float
    message: str = ""
    description: str = ""     # the property under test (the test's docstring)
    hint: str = ""            # the usual mistake behind this failure
    example: str = ""         # the smallest failing input (hypothesis shrinks it)
    traceback: str = ""       # trimmed to the student's own files
    duration: float = 0.0
    phase: str = "call"       # where it was decided: setup, call or teardown
    # The failed comparison's tensors: {"inputs", "got", "expected", "tolerance"},
    # each tensor {"shape", "dtype", "values"} (grader/counterexample.py), or None.
    counterexample: dict | None = None
    repro: str = ""           # a self-contained script that rebuilds the failure

    __test__ = False  # not a pytest test class

    def to_dict(self) -> dict:
        d = asdict(self)
        d["status"] = self.status.value
        return d


@dataclass
class ExerciseResult:
    number: int
    slug: str
    title: str
    status: Status
    points: float
    max_points: float
    tests: list[TestResult] = field(default_factory=list)
    duration: float = 0.0
    notes: list[str] = field(default_factory=list)   # e.g. "fix exercise 4 first"
    output: str = ""          # the tail of what the student's code printed
    extra: dict = field(default_factory=dict)        # e.g. the training check's figures

    @property
    def passed_count(self) -> int:
        return sum(t.status is Status.PASSED for t in self.tests)

    def to_dict(self) -> dict:
        return {
            "number": self.number,
            "slug": self.slug,
            "title": self.title,
            "points": round(self.points, 4),
            "max_points": self.max_points,
            "status": self.status.value,
            "passed": self.passed_count,
            "total_tests": len(self.tests),
            "duration": round(self.duration, 3),
            "notes": list(self.notes),
            "output": self.output,
            "extra": self.extra,
            "tests": [t.to_dict() for t in self.tests],
        }


@dataclass
class Report:
    submission: str
    seed: int
    exercises: list[ExerciseResult] = field(default_factory=list)
    grader_version: str = ""
    device: str = "cpu"
    duration: float = 0.0
    grader_fingerprint: str = ""   # sha256 over the grader's own files (grader/fingerprint.py)
    # "reference": each exercise graded on the grader's earlier exercises;
    # "own": on the student's own files end to end (runner.GradingOptions).
    dependencies: str = "reference"
    sandbox: dict = field(default_factory=dict)   # the workers' isolation (isolation.SandboxInfo)

    @property
    def total(self) -> float:
        return sum(e.points for e in self.exercises)

    @property
    def max_total(self) -> float:
        return sum(e.max_points for e in self.exercises)

    @property
    def all_passed(self) -> bool:
        return bool(self.exercises) and all(e.status is Status.PASSED for e in self.exercises)

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA_VERSION,
            "submission": self.submission,
            "seed": self.seed,
            "grader_version": self.grader_version,
            "grader_fingerprint": self.grader_fingerprint,
            "device": self.device,
            "dependencies": self.dependencies,
            "duration": round(self.duration, 3),
            "sandbox": dict(self.sandbox),
            "total": round(self.total, 4),
            "max_total": self.max_total,
            "exercises": [e.to_dict() for e in self.exercises],
        }


def exercise_status(tests: list[TestResult]) -> Status:
    """An exercise passes only when all its tests pass; otherwise the most
    serious status among its tests names it."""
    if not tests:
        return Status.ERROR
    statuses = {t.status for t in tests}
    if statuses == {Status.PASSED}:
        return Status.PASSED
    for status in _EXERCISE_PRECEDENCE:
        if status in statuses:
            return status
    return Status.FAILED  # pragma: no cover


def split_points(weights: list[float], total: float) -> list[float]:
    """Share `total` over tests in proportion to their declared weights."""
    whole = sum(weights)
    if whole <= 0:
        return [total / len(weights)] * len(weights) if weights else []
    return [total * w / whole for w in weights]


def test_result_from_dict(d: dict) -> TestResult:
    d = dict(d)
    d["status"] = Status(d["status"])
    return TestResult(**{k: v for k, v in d.items() if k in TestResult.__dataclass_fields__})


def exercise_result_from_dict(d: dict) -> ExerciseResult:
    return ExerciseResult(
        number=d["number"], slug=d["slug"], title=d.get("title", ""),
        status=Status(d["status"]), points=d["points"], max_points=d["max_points"],
        tests=[test_result_from_dict(t) for t in d.get("tests", [])],
        duration=d.get("duration", 0.0), notes=list(d.get("notes", [])),
        output=d.get("output", ""), extra=d.get("extra", {}),
    )


def report_from_dict(d: dict) -> Report:
    """Rebuild a Report from its JSON form (for merge, cache and renderers)."""
    if d.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"unsupported results schema {d.get('schema')!r}")
    return Report(
        submission=d["submission"], seed=d["seed"],
        exercises=[exercise_result_from_dict(e) for e in d["exercises"]],
        grader_version=d.get("grader_version", ""), device=d.get("device", "cpu"),
        duration=d.get("duration", 0.0), grader_fingerprint=d.get("grader_fingerprint", ""),
        dependencies=d.get("dependencies", "own"), sandbox=dict(d.get("sandbox") or {}),
    )


class FeedbackLevel(str, Enum):
    """What a student is shown of a Report (`--feedback`)."""

    FULL = "full"      # everything: messages with actual and expected values, inputs, hints
    HINTS = "hints"    # which properties failed and the hints, without values or inputs
    SCORE = "score"    # points and statuses only


def redacted(report: Report, level: FeedbackLevel | str) -> Report:
    """A copy of `report` holding only what `level` lets a student see."""
    level = FeedbackLevel(level)
    if level is FeedbackLevel.FULL:
        return report_from_dict(report.to_dict())
    copy = report_from_dict(report.to_dict())
    for exercise in copy.exercises:
        if level is FeedbackLevel.SCORE:
            exercise.notes, exercise.output, exercise.extra = [], "", {}
        for test in exercise.tests:
            test.message, test.example = "", ""
            if level is FeedbackLevel.SCORE:
                test.hint, test.traceback, test.description = "", "", ""
    return copy
