"""`attn-grade export-student`: the repository students receive, and no solutions in it."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import __version__, registry
from grader.authoring.markers import BEGIN, END, ONE_LINE, regions
from grader.cli import main
from grader.errors import ExitCode, GraderError
from grader.export import WORKFLOW_PATH, export_student
from grader.results import Status
from tests.conftest import EXERCISES, REPO, SOLUTIONS


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("student") / "repo"
    result = CliRunner().invoke(main, ["export-student", str(dest), "--source", str(REPO)])
    assert result.exit_code == 0, result.output
    return dest


def exported_files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(root.rglob("*")) if p.is_file()}


def readable_lines(name: str, text: str) -> list[str]:
    """The raw lines, and for a notebook also its cells' source lines."""
    lines = text.splitlines()
    if name.endswith(".ipynb"):
        for cell in json.loads(text)["cells"]:
            source = cell["source"]
            lines += ("".join(source) if isinstance(source, list) else source).splitlines()
    return [" ".join(line.split()) for line in lines]


def solution_code() -> dict[str, str]:
    """Every line between the solution markers of solutions/*.py (and the code
    of one-line `# SOLUTION` lines), except ones too short to be telling."""
    found = {}
    for path in sorted(SOLUTIONS.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for region in regions(text, str(path)):
            for line in lines[region.first - 1: region.last]:
                if line.strip() in (BEGIN, END):
                    continue
                code = ONE_LINE.sub("", line) if ONE_LINE.search(line) else line
                code = " ".join(code.split())
                if len(code) >= 12:
                    found[code] = f"{path.name}:{region.first}"
    return found


# ---------------------------------------------------------------------- what is exported
def test_the_student_repository_has_what_students_need(exported):
    files = exported_files(exported)
    for ex in registry.EXERCISES:
        assert files[f"exercises/{ex.file}"] == (EXERCISES / ex.file).read_text(encoding="utf-8")
    for notebook in (EXERCISES / "notebooks").glob("*.ipynb"):
        assert files[f"exercises/notebooks/{notebook.name}"] == notebook.read_text(encoding="utf-8")
    for name in ("README.md", "pyproject.toml", "constraints.txt", WORKFLOW_PATH, ".gitignore"):
        assert name in files, name


def test_nothing_from_solutions_or_the_grader_is_exported(exported):
    names = list(exported_files(exported))
    assert not (exported / "solutions").exists()
    assert not any(n.startswith(("solutions/", "grader/", "tests/", "autograder/")) for n in names)
    assert not any("test_ex" in n or n.endswith(".py") and not n.startswith("exercises/") for n in names)


def test_no_line_of_solution_code_leaks_into_the_export(exported):
    code = solution_code()
    assert len(code) > 100  # the check has something to look for
    leaks = [(name, line, code[line]) for name, text in exported_files(exported).items()
             for line in readable_lines(name, text) if line in code]
    assert not leaks, leaks


def test_the_exported_stubs_are_all_unimplemented(exported):
    for ex in registry.EXERCISES:
        text = (exported / "exercises" / ex.file).read_text(encoding="utf-8")
        assert f"# TODO: Implement for Exercise {ex.number}." in text
        assert "NotImplementedError" in text


def test_the_student_readme_explains_install_grading_and_statuses(exported):
    readme = (exported / "README.md").read_text(encoding="utf-8")
    assert "{{" not in readme
    assert "pip install -c constraints.txt -e ." in readme
    assert "attn-grade exercise 1" in readme and "attn-grade all" in readme
    for status in Status:
        assert f"| `{status.value}` |" in readme, status
    for ex in registry.EXERCISES:
        assert f"`exercises/{ex.file}`" in readme
    assert f"at least {registry.max_total():g} points" in readme


def test_the_student_pyproject_pins_this_harness(exported):
    text = (exported / "pyproject.toml").read_text(encoding="utf-8")
    if sys.version_info >= (3, 11):
        import tomllib

        project = tomllib.loads(text)["project"]
        assert project["dependencies"] == [f"attn-grade=={__version__}"]
        assert project["name"] != "attn-grade"
    else:
        assert f'"attn-grade=={__version__}"' in text


def test_the_workflow_is_the_template_with_its_threshold(exported):
    from grader.export import workflow_text

    assert (exported / WORKFLOW_PATH).read_text(encoding="utf-8") == workflow_text(registry.max_total())


# ---------------------------------------------------------------------- options
def test_harness_and_threshold_options(tmp_path):
    spec = "attn-grade @ git+https://github.com/ORG/attn-grade@v0.1.0"
    export_student(tmp_path / "s", REPO, harness=spec, fail_under=42.5)
    pyproject = (tmp_path / "s" / "pyproject.toml").read_text(encoding="utf-8")
    assert json.dumps(spec) in pyproject
    assert "vars.ATTN_GRADE_FAIL_UNDER || '42.5'" in (tmp_path / "s" / WORKFLOW_PATH).read_text()
    assert "at least 42.5 points" in (tmp_path / "s" / "README.md").read_text()


@pytest.mark.parametrize("spec", ["numpy==1.0", "attn-grade=="])
def test_a_harness_that_is_not_attn_grade_is_refused(tmp_path, spec):
    result = CliRunner().invoke(main, ["export-student", str(tmp_path / "s"), "--source", str(REPO),
                                       "--harness", spec])
    assert result.exit_code == ExitCode.USAGE_ERROR
    assert not (tmp_path / "s").exists()


def test_a_folder_that_is_not_empty_needs_force(tmp_path):
    dest = tmp_path / "s"
    (dest / "exercises").mkdir(parents=True)
    (dest / "exercises" / "old_stub.py").write_text("x = 1\n")
    with pytest.raises(GraderError, match="not empty"):
        export_student(dest, REPO)
    export_student(dest, REPO, force=True)
    assert not (dest / "exercises" / "old_stub.py").exists()
    assert (dest / "exercises" / "ex01_attention.py").exists()


def test_the_course_repository_itself_is_never_the_target():
    with pytest.raises(GraderError, match="course repository"):
        export_student(REPO, REPO)


# ---------------------------------------------------------------------- the guards
@pytest.fixture
def course(tmp_path) -> Path:
    """A copy of the course repository's exercises/ and solutions/."""
    root = tmp_path / "course"
    shutil.copytree(EXERCISES, root / "exercises")
    shutil.copytree(SOLUTIONS, root / "solutions")
    shutil.copy(REPO / "constraints.txt", root / "constraints.txt")
    return root


def test_stale_stubs_are_refused(course, tmp_path):
    stub = course / "exercises" / "ex02_masks.py"
    stub.write_text(stub.read_text(encoding="utf-8") + "\n# edited by hand\n", encoding="utf-8")
    with pytest.raises(GraderError, match="out of date.*ex02_masks.py"):
        export_student(tmp_path / "out", course)
    assert not (tmp_path / "out").exists()


def test_an_export_that_would_leak_solution_code_is_refused(course, tmp_path):
    line = next(code for code in solution_code() if "softmax" in code)
    notebooks = course / "exercises" / "notebooks"
    notebooks.mkdir(exist_ok=True)
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "source": [f"    {line}\n"],
                           "outputs": [], "execution_count": None}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    # an extra notebook (the generated ones would be refused as out of date first)
    (notebooks / "scratch.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    with pytest.raises(GraderError, match=r"solution code in exercises/notebooks/scratch\.ipynb:1"):
        export_student(tmp_path / "out", course)
    assert not (tmp_path / "out").exists()
