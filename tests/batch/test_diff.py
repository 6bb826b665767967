"""Regrade diff: per student and exercise, what changed and why."""

from __future__ import annotations

import copy

from click.testing import CliRunner

from grader.batch.diff import diff_gradebooks, summary_lines
from grader.batch.gradebook import Gradebook, Row, RowStatus
from grader.batch.writers import write_gradebook
from grader.commands.batch import diff_command
from grader.results import Status
from tests.reports import fixed_report


def gradebook(fingerprint="0.1.0+aaa", **changes) -> Gradebook:
    report = fixed_report()
    numbers = [e.number for e in report.exercises]
    rows = [Row.from_report("alice", "a", copy.deepcopy(report), "1" * 64),
            Row.from_report("bob", "b", copy.deepcopy(report), "2" * 64)]
    return Gradebook(exercises=numbers, rows=rows, seed=1, fingerprint=fingerprint, **changes)


def test_no_change():
    diff = diff_gradebooks(gradebook(), gradebook())
    assert diff.empty and summary_lines(diff) == ["no grade changed (2 students)"]


def test_a_test_that_now_passes_in_a_changed_submission():
    old, new = gradebook(), gradebook()
    bob = new.row("bob")
    exercise = bob.report.exercises[1]                       # exercise 2
    failing = next(t for t in exercise.tests if t.status is Status.FAILED)
    failing.status, failing.points = Status.PASSED, failing.max_points
    exercise.points += failing.max_points
    bob.points[2] = exercise.points
    bob.snapshot_hash = "3" * 64
    diff = diff_gradebooks(old, new)
    assert [c.student for c in diff.changes] == ["bob"] and diff.unchanged == 1
    change = diff.changes[0]
    assert change.reasons == ["submission changed (222222222222 → 333333333333)"]
    assert [(e.number, [(t.name, t.old, t.new) for t in e.tests]) for e in change.exercises] == [
        (2, [(failing.name, Status.FAILED, Status.PASSED)])]
    text = "\n".join(summary_lines(diff))
    assert "bob:" in text and f"{failing.name}: failed → passed" in text


def test_a_new_grader_same_submissions_added_and_removed_students():
    old, new = gradebook(), gradebook("0.1.0+bbb")
    new.rows[1].points[1] = 0.0
    new.rows.append(Row("carl", "c", RowStatus.EMPTY, {1: 0.0}, 70.0))
    del old.rows[0]
    new.rows[1].status = RowStatus.GRADED
    diff = diff_gradebooks(old, new)
    assert "grader fingerprint 0.1.0+aaa → 0.1.0+bbb" in diff.reasons
    kinds = {c.student: c.kind.value for c in diff.changes}
    assert kinds == {"alice": "added", "bob": "changed", "carl": "added"}
    bob = next(c for c in diff.changes if c.student == "bob")
    assert bob.reasons == ["same submission"]


def test_diff_command_reads_csv_and_json(tmp_path):
    old, new = gradebook(), gradebook()
    new.rows[0].points[1] = 5.0
    paths = write_gradebook(old, tmp_path / "old.csv") + write_gradebook(new, tmp_path / "new.csv")
    for a, b in ((paths[0], paths[2]), (paths[1], paths[3])):        # csv/csv, json/json
        result = CliRunner().invoke(diff_command, [str(a), str(b)])
        assert result.exit_code == 1 and "alice:" in result.output and "ex01: 10 → 5" in result.output
    same = CliRunner().invoke(diff_command, [str(paths[0]), str(paths[0])])
    assert same.exit_code == 0 and "no grade changed" in same.output
    missing = CliRunner().invoke(diff_command, [str(tmp_path / "nope.csv"), str(paths[0])])
    assert missing.exit_code == 2 and "no results file" in missing.output
