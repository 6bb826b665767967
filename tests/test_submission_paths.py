"""Mistyped submission paths (issue 12, point 5): one clear line, exit 2.

A folder without a single exercise file (the repository root, an empty
folder) is a mistake in the path, not a submission worth zero points.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import registry, runner
from grader.cli import main
from grader.errors import ExitCode, GraderError
from grader.submission import Submission, resolve_path
from tests.conftest import EXERCISES, SOLUTIONS, grade


def _repository_like(tmp_path: Path) -> Path:
    """A folder laid out like the course repository: exercise files one level down."""
    (tmp_path / "exercises").mkdir()
    shutil.copy(EXERCISES / "ex01_attention.py", tmp_path / "exercises" / "ex01_attention.py")
    (tmp_path / "README.md").write_text("course\n")
    (tmp_path / "setup.py").write_text("")
    return tmp_path


def _refused(path: Path) -> GraderError:
    with pytest.raises(GraderError) as info:
        runner.grade(path, [registry.get(1)], runner.GradingOptions(seed=1))
    assert info.value.exit_code == ExitCode.USAGE_ERROR
    return info.value


def test_the_repository_root_is_refused_with_the_folder_meant(tmp_path):
    root = _repository_like(tmp_path)
    error = _refused(root)
    assert error.message == f"no exercise files in {root} (did you mean {root / 'exercises'}?)"


def test_an_empty_folder_is_refused(tmp_path):
    error = _refused(tmp_path)
    assert error.message.startswith(f"no exercise files in {tmp_path}")
    assert "ex01_attention.py" in error.hint


def test_a_folder_of_notebooks_is_suggested(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "ex02_masks.ipynb").write_text("{}")
    assert f"(did you mean {tmp_path / 'notebooks'}?)" in _refused(tmp_path).message


@pytest.mark.parametrize("command", [["exercise", "1", "--format", "json"], ["watch", "1"], ["watch"]])
def test_the_cli_says_it_in_one_line_with_exit_code_2(tmp_path, command):
    root = _repository_like(tmp_path)
    out = CliRunner().invoke(main, [*command, "--submission", str(root)])
    assert out.exit_code == ExitCode.USAGE_ERROR, out.output
    assert f"no exercise files in {root} (did you mean {root / 'exercises'}?)" in out.output
    assert "Traceback" not in out.output


def test_the_default_folder_from_inside_exercises_is_the_current_folder(tmp_path, monkeypatch):
    shutil.copy(SOLUTIONS / "ex01_attention.py", tmp_path / "ex01_attention.py")
    monkeypatch.chdir(tmp_path)
    assert resolve_path("exercises") == Path(".")
    submission = Submission.from_path("exercises")
    assert submission.has("ex01_attention") and submission.label == "."
    # any other missing path stays an error
    with pytest.raises(GraderError, match="submission not found"):
        resolve_path("exercise")


def test_a_folder_with_one_exercise_file_is_a_submission(tmp_path):
    shutil.copy(EXERCISES / "ex03_cross_attention.py", tmp_path / "ex03_cross_attention.py")
    Submission.from_path(tmp_path).require_exercise_files()   # no error


def test_warnings_name_the_students_file_not_the_staging_copy(tmp_path):
    source = (SOLUTIONS / "ex01_attention.py").read_text()
    (tmp_path / "ex01_attention.py").write_text(
        "import warnings\nwarnings.warn('careful at import')\n" + source)
    report = grade(tmp_path, 1, max_examples=1)
    output = report.exercises[0].output
    assert f"{tmp_path / 'ex01_attention.py'}:2: UserWarning: careful at import" in output
    assert "attn-grade-" not in output and "/submission/" not in output
