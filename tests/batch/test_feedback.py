"""Feedback to send back: one scorecard per student, and `render` of a batch gradebook."""

from __future__ import annotations

import json

from click.testing import CliRunner

from grader.batch.feedback import write_feedback
from grader.batch.gradebook import Gradebook, Row, RowStatus
from grader.batch.writers import write_gradebook
from grader.commands.render import render_command
from grader.render import render_text
from tests.reports import fixed_report


def book() -> Gradebook:
    report = fixed_report()
    rows = [Row.from_report("alice", "subs/alice", report, "a" * 64),
            Row("bob", "subs/bob", RowStatus.EMPTY, {1: 0.0}, 70.0, note="no exercise file"),
            Row("carl", "subs/carl", RowStatus.CRASHED, {}, 70.0, note="the judge process died")]
    rows[0].flags = ["ex01: identical to bob"]
    return Gradebook(exercises=[e.number for e in report.exercises], rows=rows, seed=1, fingerprint="f")


def test_one_markdown_and_json_per_student(tmp_path):
    written = write_feedback(book(), tmp_path / "fb")
    assert sorted(p.name for p in written) == ["alice.json", "alice.md", "bob.json", "bob.md",
                                               "carl.json", "carl.md"]
    assert (tmp_path / "fb" / "alice.md").read_text() == render_text(fixed_report(), "markdown")
    assert json.loads((tmp_path / "fb" / "alice.json").read_text()) == fixed_report().to_dict()
    assert "No exercise file" in (tmp_path / "fb" / "bob.md").read_text()
    assert "could not be graded (crashed)" in (tmp_path / "fb" / "carl.md").read_text()
    assert "identical" not in (tmp_path / "fb" / "alice.md").read_text()   # flags are not feedback


def test_render_accepts_a_batch_gradebook(tmp_path):
    path = write_gradebook(book(), tmp_path / "grades.json")[0]
    one = CliRunner().invoke(render_command, [str(path), "--student", "alice", "--format", "markdown"])
    assert one.exit_code == 0, one.output
    assert one.output == render_text(fixed_report(), "markdown")
    every = CliRunner().invoke(render_command, [str(path), "--output-dir", str(tmp_path / "all"),
                                                "--format", "junit"])
    assert every.exit_code == 0, every.output
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["alice.xml"]   # only graded students


def test_render_of_a_gradebook_explains_what_it_needs(tmp_path):
    path = write_gradebook(book(), tmp_path / "grades.json")[0]
    for args, expected in (([], "--student NAME"), (["--student", "nobody"], "no student 'nobody'"),
                           (["--student", "bob"], "nothing was graded")):
        result = CliRunner().invoke(render_command, [str(path), *args])
        assert result.exit_code == 2 and expected in result.output, result.output
    single = tmp_path / "one.json"
    single.write_text(json.dumps(fixed_report().to_dict()))
    result = CliRunner().invoke(render_command, [str(single), "--student", "alice"])
    assert result.exit_code == 2 and "batch gradebook" in result.output


def test_feedback_levels_hide_values_or_everything_but_points(tmp_path):
    from grader.results import FeedbackLevel

    report = fixed_report()
    failing = [t for e in report.exercises for t in e.tests if t.message]
    assert any("expected" in t.message for t in failing) and any(t.example for t in failing)
    for level in FeedbackLevel:
        folder = tmp_path / level.value
        write_feedback(book(), folder, level)
        text = (folder / "alice.md").read_text()
        shown = json.loads((folder / "alice.json").read_text())
        tests = [t for e in shown["exercises"] for t in e["tests"]]
        assert shown["total"] == round(report.total, 4)             # points are always there
        if level is FeedbackLevel.FULL:
            assert text == render_text(report, "markdown")
            continue
        assert "0.325861" not in text and "AttentionCase" not in text   # no values, no inputs
        assert all(t["message"] == "" and t["example"] == "" for t in tests)
        hints = [t["hint"] for t in tests if t["hint"]]
        assert bool(hints) == (level is FeedbackLevel.HINTS)
        if level is FeedbackLevel.HINTS:
            assert "applied after the softmax" in text


def test_feedback_inside_the_class_folder_is_refused_before_grading(tmp_path):
    from grader.commands.batch import batch_command

    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "ex01_attention.py").write_text("x = 1\n")
    result = CliRunner().invoke(batch_command, [str(tmp_path), "-e", "1", "--feedback-dir",
                                                str(tmp_path / "feedback"), "-o", str(tmp_path / "g.csv")])
    assert result.exit_code == 2 and "inside the class folder" in result.output
    assert not (tmp_path / "g.csv").exists()
