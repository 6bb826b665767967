"""The judge checks the grader's own files: a fingerprint over every file of
the package (bytecode caches included), reported, and checked again after
grading.  Tests work on a copy of the package, never on the installed one."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from grader import fingerprint, registry, runner
from grader.errors import ExitCode
from grader.fingerprint import GraderChanged
from grader.results import Report, report_from_dict


@pytest.fixture
def package_copy(tmp_path) -> Path:
    copy = tmp_path / "grader"
    shutil.copytree(fingerprint.PACKAGE_DIR, copy)
    return copy


def test_the_same_files_give_the_same_fingerprint(package_copy):
    first, again = fingerprint.fingerprint(package_copy), fingerprint.fingerprint(package_copy)
    assert first.digest == again.digest and first.changes(again) == []
    assert "grader/hidden/test_ex01_attention.py" in first.files


def test_a_planted_bytecode_file_changes_the_fingerprint(package_copy):
    before = fingerprint.fingerprint(package_copy)
    cache = package_copy / "hidden" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "test_ex01_attention.cpython-311.pyc").write_bytes(b"\x00" * 32)
    after = fingerprint.fingerprint(package_copy)
    assert after.digest != before.digest
    assert before.changes(after) == ["grader/hidden/__pycache__/test_ex01_attention.cpython-311.pyc (added)"]


def test_an_edited_or_removed_file_changes_the_fingerprint(package_copy):
    before = fingerprint.fingerprint(package_copy)
    oracles = package_copy / "hidden" / "oracles.py"
    oracles.write_text(oracles.read_text() + "\n# altered\n")
    (package_copy / "hints.py").unlink()
    with pytest.raises(GraderChanged) as caught:
        fingerprint.verify(before)
    assert caught.value.exit_code == ExitCode.INTERNAL_ERROR
    assert "grader/hidden/oracles.py (changed)" in caught.value.message
    assert "grader/hints.py (removed)" in caught.value.message


def _missing_exercise_1(tmp_path: Path) -> Path:
    """A submission without exercise 1 (it holds exercise 2 only): exercise 1
    is graded without starting a worker."""
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "ex02_masks.py").write_text("x = 1\n")
    return folder


def test_the_report_carries_the_fingerprint(package_copy, tmp_path, monkeypatch):
    monkeypatch.setattr(fingerprint, "PACKAGE_DIR", package_copy)
    report = runner.grade(_missing_exercise_1(tmp_path), [registry.get(1)], runner.GradingOptions(seed=1))
    assert report.grader_fingerprint == fingerprint.fingerprint(package_copy).digest
    assert report_from_dict(report.to_dict()).grader_fingerprint == report.grader_fingerprint
    assert report_from_dict(Report("s", 1).to_dict()).grader_fingerprint == ""


def test_a_change_while_grading_stops_with_an_internal_error(package_copy, tmp_path, monkeypatch):
    """Something writes into the grader during the run: no report, exit code 3,
    and the message names the file."""
    monkeypatch.setattr(fingerprint, "PACKAGE_DIR", package_copy)
    planted = package_copy / "hidden" / "__pycache__" / "oracles.cpython-311.pyc"

    def plant(event, **_):
        if event == "exercise_start":
            planted.parent.mkdir(exist_ok=True)
            planted.write_bytes(b"planted")

    submission = _missing_exercise_1(tmp_path)
    with pytest.raises(GraderChanged) as caught:
        runner.grade(submission, [registry.get(1)], runner.GradingOptions(seed=1), progress=plant)
    assert caught.value.exit_code == ExitCode.INTERNAL_ERROR
    assert "grader/hidden/__pycache__/oracles.cpython-311.pyc (added)" in caught.value.message
    # The same judge process refuses to grade anything else on the altered files.
    with pytest.raises(GraderChanged):
        runner.grade(submission, [registry.get(1)], runner.GradingOptions(seed=1))


def test_the_judge_writes_no_bytecode_and_has_its_modules_before_grading(package_copy, monkeypatch):
    monkeypatch.setattr(fingerprint, "PACKAGE_DIR", package_copy)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    fingerprint.freeze_judge()
    assert sys.dont_write_bytecode and os.environ["PYTHONDONTWRITEBYTECODE"] == "1"
    for exercise in registry.EXERCISES:
        assert f"grader.hidden.{exercise.test_module.removesuffix('.py')}" in sys.modules
    for module in ("grader.hidden.oracles", "grader.render.markdown", "grader.training.check"):
        assert module in sys.modules


def test_bytecode_without_a_source_is_never_imported_by_the_judge(tmp_path, monkeypatch):
    """A sourceless `evil.pyc` dropped next to the judge's modules is not
    picked up by the judge's preloading."""
    import compileall

    package = tmp_path / "judgepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "fine.py").write_text("VALUE = 1\n")
    (tmp_path / "evil.py").write_text("raise SystemExit('planted code ran')\n")
    compileall.compile_file(str(tmp_path / "evil.py"), legacy=True, quiet=1)
    (tmp_path / "evil.pyc").rename(package / "evil.pyc")
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = fingerprint.import_judge_modules(packages=("judgepkg",))
    assert loaded == ["judgepkg.fine"]
    for name in ("judgepkg", "judgepkg.fine"):
        sys.modules.pop(name, None)


def test_planted_bytecode_is_told_from_the_compiled_source(tmp_path):
    """`planted_bytecode` (for doctor): a cache Python would load instead of
    its source, holding other code, is named; honest caches are not."""
    import py_compile

    package = tmp_path / "pkg"
    package.mkdir()
    honest, altered = package / "honest.py", package / "oracle.py"
    honest.write_text("def f():\n    return 1\n")
    altered.write_text("def ok(x):\n    return x == 42\n")
    py_compile.compile(str(honest), doraise=True)
    cache = Path(py_compile.compile(str(altered), doraise=True))
    assert fingerprint.planted_bytecode(package) == []
    # The same header (source mtime and size), other code: what an attacker writes.
    forged = package / "forged.py"
    forged.write_text("def ok(x):\n    return True  \n")
    forged_cache = Path(py_compile.compile(str(forged), doraise=True))
    cache.write_bytes(cache.read_bytes()[:16] + forged_cache.read_bytes()[16:])
    assert fingerprint.planted_bytecode(package) == [f"pkg/__pycache__/{cache.name}"]


def test_the_command_exits_with_code_3_and_names_the_file(package_copy, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from grader.cli import main

    monkeypatch.setenv("ATTN_GRADE_NO_ZYGOTE", "1")  # no worker is needed: no zygote either
    monkeypatch.setattr(fingerprint, "PACKAGE_DIR", package_copy)
    run_hidden_tests = runner.run_hidden_tests

    def planting(*args, **kwargs):
        (package_copy / "hidden" / "checks.py").write_text("def assert_close(*a, **k):\n    pass\n")
        return run_hidden_tests(*args, **kwargs)

    monkeypatch.setattr(runner, "run_hidden_tests", planting)
    result = CliRunner().invoke(main, ["exercise", "1", "--submission", str(_missing_exercise_1(tmp_path))])
    assert result.exit_code == ExitCode.INTERNAL_ERROR, result.output
    assert "grader/hidden/checks.py (changed)" in result.output
    assert "Traceback" not in result.output
