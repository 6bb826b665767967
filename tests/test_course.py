"""grader/course.py: the course seed, declared once, overridable in private."""

from __future__ import annotations

import pytest

from grader.course import ENV_VAR, PUBLIC_COURSE_SEED, course_seed
from grader.errors import GraderError


def test_the_public_seed_by_default(tmp_path):
    assert course_seed({}, tmp_path / "none") == PUBLIC_COURSE_SEED


def test_a_private_seed_from_the_environment_or_a_file(tmp_path):
    file = tmp_path / "course-seed"
    file.write_text("424242\n")
    assert course_seed({}, file) == 424242
    assert course_seed({ENV_VAR: " 77 "}, file) == 77          # the environment wins


@pytest.mark.parametrize("value", ["abc", "-3", "1e9"])
def test_a_bad_seed_is_one_clear_error(tmp_path, value):
    with pytest.raises(GraderError, match="course seed"):
        course_seed({ENV_VAR: value}, tmp_path / "none")


def test_batch_grades_with_the_course_seed(monkeypatch):
    from click.testing import CliRunner

    from grader.cli import main
    from grader.commands import batch

    seen = {}

    def fake_run(submissions, options, progress=None):
        seen["seed"] = options.seed
        raise GraderError("stop here")

    monkeypatch.setattr(batch, "run_batch", fake_run)
    monkeypatch.setenv(ENV_VAR, "31337")
    out = CliRunner().invoke(main, ["batch", ".", "--exercises", "1"])
    assert seen["seed"] == 31337 and out.exit_code == 2, out.output
    CliRunner().invoke(main, ["batch", ".", "--exercises", "1", "--seed", "5"])
    assert seen["seed"] == 5


def test_exercise_and_all_take_the_course_seed_when_asked(monkeypatch):
    from click.testing import CliRunner

    from grader import runner
    from grader.cli import main
    from grader.results import Report

    seen = []

    def fake_grade(submission, exercises, options, progress=None):
        seen.append(options.seed)
        return Report(submission=str(submission), seed=options.seed or 1)

    monkeypatch.setattr(runner, "grade", fake_grade)
    monkeypatch.setattr("grader.sandbox.spawn.prewarm", lambda *a, **k: None)
    monkeypatch.setenv(ENV_VAR, "4242")
    for extra in (["--course-seed"], ["--course-seed", "--seed", "7"], []):
        CliRunner().invoke(main, ["exercise", "1", "--submission", "solutions", "--format", "json",
                                  *extra])
    assert seen == [4242, 7, None]       # without the flag: a fresh seed per run


def test_doctor_refuses_a_weak_level_only_when_asked(monkeypatch):
    from click.testing import CliRunner

    from grader.cli import main
    from grader.sandbox import isolation

    monkeypatch.setenv(isolation.FORCE_ENV, isolation.PROCESS)
    monkeypatch.setattr(isolation, "_DETECTED", None)     # detect again, under the cap
    monkeypatch.delenv("ATTN_GRADE_ALLOW_WEAK_ISOLATION", raising=False)
    assert CliRunner().invoke(main, ["doctor"]).exit_code == 0
    weak = CliRunner().invoke(main, ["doctor", "--minimum", "uid"])
    assert weak.exit_code == 2 and "allow-weak-isolation" in weak.output
    assert CliRunner().invoke(main, ["doctor", "--minimum", "uid", "--allow-weak-isolation"]).exit_code == 0
