"""Exercises 1 and 2 end to end: the reference solutions get every point, the
untouched stubs get none (each test `not_implemented`, nothing crashes), and
grading leaves the submission folder exactly as it was."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.results import Status
from tests.conftest import EXERCISES, SOLUTIONS, describe, grade


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", ".hypothesis", "*.pyc"))
    return dest


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


@pytest.mark.slow
def test_solutions_score_20_of_20_and_the_folder_is_untouched(tmp_path):
    submission = _copy(SOLUTIONS, tmp_path / "solutions")
    before = _snapshot(submission)
    report = grade(submission, 1, 2)
    assert [e.number for e in report.exercises] == [1, 2]
    for result in report.exercises:
        assert result.status is Status.PASSED, describe(result)
        assert result.points == pytest.approx(10.0), describe(result)
        assert all(t.status is Status.PASSED for t in result.tests), describe(result)
        assert len(result.tests) >= 5, describe(result)
    assert report.total == pytest.approx(20.0)
    assert report.max_total == pytest.approx(20.0)
    assert _snapshot(submission) == before, "grading wrote into the submission folder"


@pytest.mark.slow
def test_untouched_stubs_score_0_all_not_implemented_and_the_folder_is_untouched(tmp_path):
    submission = _copy(EXERCISES, tmp_path / "exercises")
    before = _snapshot(submission)
    report = grade(submission, 1, 2, max_examples=3)
    assert report.total == 0.0
    for result in report.exercises:
        dump = describe(result)
        assert result.status is Status.NOT_IMPLEMENTED, dump
        assert result.points == 0.0, dump
        assert result.tests, dump
        for test in result.tests:
            assert test.status is Status.NOT_IMPLEMENTED, dump
            assert "Exercise" in test.message or "NotImplementedError" in test.message, dump
            assert "Implement it" in test.hint, dump
    assert _snapshot(submission) == before, "grading wrote into the submission folder"


@pytest.mark.slow
def test_the_real_solutions_folder_is_left_untouched(tmp_path):
    """Grading solutions/ in place creates no .hypothesis/, __pycache__ or other file there."""
    before = set(_snapshot(SOLUTIONS))
    report = grade(SOLUTIONS, 2, max_examples=3)
    assert report.exercises[0].status is Status.PASSED, describe(report.exercises[0])
    after = set(_snapshot(SOLUTIONS))
    assert after == before, f"new in solutions/: {sorted(after - before)}"
