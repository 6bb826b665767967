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


@pytest.fixture(scope="module")
def wheel(exported) -> str:
    """The harness wheel the default export built (other exports reuse it: no rebuild)."""
    return str(next((exported / "dist").glob("attn_grade-*.whl")))


def exported_files(root: Path) -> dict[str, str]:
    """The text files of an export (dist/ holds the harness wheel, checked on its own)."""
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(root.rglob("*")) if p.is_file() and not p.relative_to(root).parts[0] == "dist"}


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
    assert [p.name for p in (exported / "dist").iterdir()][0].startswith("attn_grade-")
    assert len(list((exported / "dist").iterdir())) == 1


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


def test_the_student_pyproject_pins_the_wheel_of_this_harness(exported):
    text = (exported / "pyproject.toml").read_text(encoding="utf-8")
    wheel = next((exported / "dist").glob("attn_grade-*.whl"))
    version = wheel.name.split("-")[1]
    assert version.startswith(f"{__version__}+export.")     # a local label: no index can serve it
    assert f'"attn-grade=={version}"' in text and 'name = "attn-grade-exercises"' in text
    assert (exported / "constraints.txt").read_text().splitlines()[-1] == "--find-links dist"


def test_the_workflow_is_the_template_with_its_threshold(exported):
    from grader.export import workflow_text

    assert (exported / WORKFLOW_PATH).read_text(encoding="utf-8") == workflow_text(registry.max_total())


# ---------------------------------------------------------------------- options
def _git_repo(path: Path) -> Path:
    import subprocess

    path.mkdir()
    for args in (["init", "-q", "-b", "main"], ["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q",
                                                "--allow-empty", "-m", "x"], ["tag", "v0.1.0"]):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)
    return path


def test_harness_and_threshold_options(tmp_path):
    spec = f"attn-grade @ git+file://{_git_repo(tmp_path / 'harness')}@v0.1.0"
    export_student(tmp_path / "s", REPO, harness=spec, fail_under=42.5)
    assert not (tmp_path / "s" / "dist").exists()
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


def test_a_folder_that_is_not_empty_needs_force(tmp_path, wheel):
    dest = tmp_path / "s"
    (dest / "exercises").mkdir(parents=True)
    (dest / "exercises" / "old_stub.py").write_text("x = 1\n")
    with pytest.raises(GraderError, match="not empty"):
        export_student(dest, REPO, harness=wheel)
    export_student(dest, REPO, force=True, harness=wheel)
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


def test_an_export_that_would_leak_solution_code_is_refused(course, tmp_path, wheel):
    line = next(code for code in solution_code() if "softmax" in code)
    notebooks = course / "exercises" / "notebooks"
    notebooks.mkdir(exist_ok=True)
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "source": [f"    {line}\n"],
                           "outputs": [], "execution_count": None}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    # an extra notebook (the generated ones would be refused as out of date first)
    (notebooks / "scratch.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    with pytest.raises(GraderError, match=r"solution code in exercises/notebooks/scratch\.ipynb:1"):
        export_student(tmp_path / "out", course, harness=wheel)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------- it installs
def _fresh_venv(path: Path) -> Path:
    """A venv with no packages of its own; this one's site-packages are reachable through a
    .pth file, so installing needs no download (only the export's own wheel is new)."""
    import site
    import subprocess
    import venv

    venv.EnvBuilder(with_pip=False).create(path)
    python = path / "bin" / "python"
    target = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    (Path(target) / "_harness_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


@pytest.mark.slow
def test_the_export_installs_offline_and_grades_the_stubs(tmp_path):
    import os
    import subprocess

    repo = tmp_path / "repo"
    export_student(repo, REPO)
    wheels = list((repo / "dist").glob("attn_grade-*.whl"))
    assert len(wheels) == 1 and "--find-links dist" in (repo / "constraints.txt").read_text()
    python = _fresh_venv(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_INDEX", "PIP_EXTRA"))}
    # the README's command, offline: the harness can only come from dist/
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                              "--no-index", "--no-build-isolation", "-c", "constraints.txt", "-e", "."],
                             cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    where = subprocess.run([str(python), "-c", "import grader; print(grader.__file__)"], cwd=repo,
                           env=env, capture_output=True, text=True, timeout=60)
    assert str(tmp_path / "venv") in where.stdout, where.stdout + where.stderr   # not this checkout
    graded = subprocess.run([str(tmp_path / "venv" / "bin" / "attn-grade"), "exercise", "1", "--format",
                             "json", "--no-train"], cwd=repo, env=env, capture_output=True, text=True,
                            timeout=300)
    assert graded.returncode == ExitCode.SOME_FAILED, graded.stderr[-3000:]
    report = json.loads(graded.stdout)
    assert [(e["number"], e["status"]) for e in report["exercises"]] == [(1, "not_implemented")]


def test_a_harness_that_does_not_resolve_is_refused(tmp_path):
    missing = tmp_path / "attn_grade-9.9.9-py3-none-any.whl"
    for spec, message in ((str(missing), "no such wheel"),
                          (str(tmp_path / "nowhere" / "src"), "no such file or folder"),
                          (f"git+file://{tmp_path}/no-repo@v1", "does not resolve"),
                          ("attn-grade==99.0.0", "does not resolve")):
        result = CliRunner().invoke(main, ["export-student", str(tmp_path / "s"), "--source", str(REPO),
                                           "--harness", spec])
        assert result.exit_code == ExitCode.USAGE_ERROR, (spec, result.output)
        assert message in result.output, (spec, result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "s").exists()
