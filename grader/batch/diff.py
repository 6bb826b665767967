"""`attn-grade diff OLD NEW`: what changed between two runs, per student and exercise, and why.

Why a grade moved is one of: the grader changed (version / fingerprint), the
submission changed (its snapshot hash), the settings changed (seed...).  With
gradebook JSON on both sides, the tests whose status changed are listed too;
a CSV carries points and hashes only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from grader.render.points import points_text
from grader.batch.gradebook import Gradebook, Row
from grader.batch.writers import HASH_CHARS, read_gradebook
from grader.results import Report, Status

POINTS_EPSILON = 1e-6


class ChangeKind(str, Enum):
    CHANGED = "changed"
    ADDED = "added"         # a student only in NEW
    REMOVED = "removed"     # a student only in OLD


@dataclass(frozen=True)
class TestChange:
    name: str
    old: Status | None      # None: the test was not there
    new: Status | None

    __test__ = False

    def text(self) -> str:
        return (f"{self.name}: {self.old.value if self.old else 'absent'} → "
                f"{self.new.value if self.new else 'absent'}")


@dataclass
class ExerciseChange:
    number: int
    old_points: float | None
    new_points: float | None
    tests: list[TestChange] = field(default_factory=list)


@dataclass
class StudentChange:
    student: str
    kind: ChangeKind
    old_total: float | None = None
    new_total: float | None = None
    old_status: str = ""
    new_status: str = ""
    exercises: list[ExerciseChange] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


@dataclass
class GradebookDiff:
    changes: list[StudentChange]
    reasons: list[str]               # for the whole run (grader version, settings)
    unchanged: int

    @property
    def empty(self) -> bool:
        return not self.changes


def _tests(report: Report | None, number: int) -> dict[str, Status]:
    if report is None:
        return {}
    for exercise in report.exercises:
        if exercise.number == number:
            return {t.name: t.status for t in exercise.tests}
    return {}


def _hashes_differ(old: str, new: str) -> bool:
    if not old or not new:
        return False
    size = min(len(old), len(new), max(HASH_CHARS, 1))
    return old[:size] != new[:size]


def _row_change(old: Row, new: Row, exercises: list[int]) -> StudentChange | None:
    change = StudentChange(old.student, ChangeKind.CHANGED, old.total, new.total, old.status.value, new.status.value)
    for number in exercises:
        before, after = old.points.get(number), new.points.get(number)
        moved = (before is None) != (after is None) or (
            before is not None and after is not None and abs(before - after) > POINTS_EPSILON)
        old_tests, new_tests = _tests(old.report, number), _tests(new.report, number)
        tests = [TestChange(name, old_tests.get(name), new_tests.get(name))
                 for name in sorted(set(old_tests) | set(new_tests))
                 if old_tests.get(name) != new_tests.get(name)]
        if moved or tests:
            change.exercises.append(ExerciseChange(number, before, after, tests))
    if not change.exercises and old.status == new.status:
        return None
    if _hashes_differ(old.snapshot_hash, new.snapshot_hash):
        change.reasons.append(f"submission changed ({old.snapshot_hash[:HASH_CHARS]} → "
                              f"{new.snapshot_hash[:HASH_CHARS]})")
    elif old.snapshot_hash and new.snapshot_hash:
        change.reasons.append("same submission")
    return change


def diff_gradebooks(old: Gradebook, new: Gradebook) -> GradebookDiff:
    reasons = []
    if old.grader_version and new.grader_version and old.grader_version != new.grader_version:
        reasons.append(f"grader version {old.grader_version} → {new.grader_version}")
    if old.fingerprint and new.fingerprint and old.fingerprint != new.fingerprint:
        reasons.append(f"grader fingerprint {old.fingerprint} → {new.fingerprint}")
    for key in sorted(set(old.options) | set(new.options)):
        if old.options and new.options and old.options.get(key) != new.options.get(key):
            reasons.append(f"{key} {old.options.get(key)} → {new.options.get(key)}")
    if old.exercises != new.exercises:
        reasons.append(f"exercises {old.exercises} → {new.exercises}")
    exercises = sorted(set(old.exercises) | set(new.exercises))
    olds = {r.student: r for r in old.rows}
    news = {r.student: r for r in new.rows}
    changes: list[StudentChange] = []
    unchanged = 0
    for student in sorted(set(olds) | set(news)):
        if student not in news:
            row = olds[student]
            changes.append(StudentChange(student, ChangeKind.REMOVED, old_total=row.total, old_status=row.status.value))
        elif student not in olds:
            row = news[student]
            changes.append(StudentChange(student, ChangeKind.ADDED, new_total=row.total, new_status=row.status.value))
        else:
            change = _row_change(olds[student], news[student], exercises)
            if change is None:
                unchanged += 1
            else:
                changes.append(change)
    return GradebookDiff(changes, reasons, unchanged)


def diff_files(old: Path, new: Path) -> GradebookDiff:
    return diff_gradebooks(read_gradebook(old), read_gradebook(new))


def _points(value: float | None) -> str:
    return "-" if value is None else points_text(value)


def summary_lines(diff: GradebookDiff) -> list[str]:
    """The diff as plain text, one student per paragraph."""
    lines = []
    if diff.reasons:
        lines.append("run: " + "; ".join(diff.reasons))
    if diff.empty:
        lines.append(f"no grade changed ({diff.unchanged} students)")
        return lines
    lines.append(f"{len(diff.changes)} students changed, {diff.unchanged} unchanged")
    for change in diff.changes:
        if change.kind is ChangeKind.ADDED:
            lines.append(f"{change.student}: new ({_points(change.new_total)}, {change.new_status})")
            continue
        if change.kind is ChangeKind.REMOVED:
            lines.append(f"{change.student}: gone (was {_points(change.old_total)}, {change.old_status})")
            continue
        status = (f", {change.old_status} → {change.new_status}"
                  if change.old_status != change.new_status else "")
        why = f" [{'; '.join(change.reasons)}]" if change.reasons else ""
        lines.append(f"{change.student}: {_points(change.old_total)} → {_points(change.new_total)}"
                     f"{status}{why}")
        for exercise in change.exercises:
            lines.append(f"  ex{exercise.number:02d}: {_points(exercise.old_points)} → "
                         f"{_points(exercise.new_points)}")
            for test in exercise.tests:
                lines.append(f"    {test.text()}")
    return lines
