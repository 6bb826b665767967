"""`attn-grade export-student DIR`: write the repository students receive.

    DIR/
      exercises/ex01_attention.py ...     the generated stubs (never solutions/)
      exercises/notebooks/*.ipynb         the notebooks, when the course has them
      README.md                           install, run, how grading works, statuses
      pyproject.toml                      installs the harness (see grader/harness.py)
      constraints.txt                     the torch pin (CPU wheel), as in this repo, and
                                          `--find-links dist` when the harness is a wheel
      dist/attn_grade-*.whl               by default: a wheel of this harness
      .github/workflows/grade.yml         grades every push and pull request
      .gitignore

The stubs are copied from the course repository's exercises/ only after
checking that they are up to date with solutions/ (else: run `attn-grade
generate`), and every file written is scanned for lines of solution code
(the text between the solution markers of solutions/*.py): an export that
would leak one is refused, with the file and line.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grader import registry
from grader.version import __version__
from grader.errors import GraderError
from grader.harness import Harness, check_requirement_text
from grader.harness import resolve as resolve_harness

TEMPLATES = Path(__file__).resolve().parent / "templates"
WORKFLOW_TEMPLATE = TEMPLATES / "student-grade.yml"
README_TEMPLATE = TEMPLATES / "student-README.md"
WORKFLOW_PATH = ".github/workflows/grade.yml"
# The workflow template's default threshold, replaced by --fail-under at export.
FAIL_UNDER_TOKEN = "vars.ATTN_GRADE_FAIL_UNDER || '{points}'"
TEMPLATE_FAIL_UNDER = registry.max_total()

# A solution line shorter than this is too generic to call a leak ("x,", "model,").
MIN_LEAK_CHARS = 12

GITIGNORE = """\
__pycache__/
*.py[cod]
.venv/
.ipynb_checkpoints/
grade-results/
"""


@dataclass(frozen=True)
class Leak:
    file: str
    line: int
    text: str
    solution: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text!r} (from {self.solution})"


def threshold_text(value: float) -> str:
    """A configured number of points (a threshold, a maximum) written exactly,
    for a workflow to compare with: not a displayed score (render/points.py)."""
    return f"{value:g}"


# ---------------------------------------------------------------------- leaks
def solution_lines(solutions: Path) -> dict[str, str]:
    """{normalised line of solution code: the solution file it comes from}."""
    from grader.authoring.markers import BEGIN, END, ONE_LINE, regions

    found: dict[str, str] = {}
    for path in sorted(solutions.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for region in regions(text, str(path)):
            for line in lines[region.first - 1: region.last]:
                stripped = line.strip()
                if stripped in (BEGIN, END):
                    continue
                if ONE_LINE.search(line):
                    stripped = ONE_LINE.sub("", line).strip()
                normal = _normal(stripped)
                if len(normal) >= MIN_LEAK_CHARS:
                    found.setdefault(normal, path.name)
    return found


def _normal(line: str) -> str:
    return " ".join(line.split())


def _text_lines(name: str, text: str) -> list[tuple[int, str]]:
    """The lines a reader sees: for a notebook, the lines of its cells' sources."""
    if name.endswith(".ipynb"):
        try:
            cells = json.loads(text).get("cells", [])
        except ValueError:
            return list(enumerate(text.splitlines(), start=1))
        lines: list[tuple[int, str]] = []
        for number, cell in enumerate(cells, start=1):
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            lines += [(number, line) for line in source.splitlines()]
        return lines
    return list(enumerate(text.splitlines(), start=1))


def find_leaks(files: dict[str, str], solutions: Path) -> list[Leak]:
    """Lines of solution code found in `files` ({relative path: text})."""
    if not solutions.is_dir():
        return []
    known = solution_lines(solutions)
    leaks = []
    for name, text in sorted(files.items()):
        for number, line in _text_lines(name, text):
            normal = _normal(line)
            if normal in known:
                leaks.append(Leak(name, number, normal, known[normal]))
    return leaks


# ---------------------------------------------------------------------- files
def workflow_text(fail_under: float | None = None) -> str:
    text = WORKFLOW_TEMPLATE.read_text(encoding="utf-8")
    token = FAIL_UNDER_TOKEN.format(points=threshold_text(TEMPLATE_FAIL_UNDER))
    if text.count(token) != 1:  # pragma: no cover - the template and this module disagree
        raise GraderError(f"{WORKFLOW_TEMPLATE} should contain {token!r} exactly once")
    if fail_under is not None:
        text = text.replace(token, FAIL_UNDER_TOKEN.format(points=threshold_text(fail_under)))
    return text


def exercise_table() -> str:
    rows = ["| # | exercise | file | points | depends on |", "|--:|:--|:--|--:|:--|"]
    for ex in registry.EXERCISES:
        rows.append(f"| {ex.number} | {ex.title} | `exercises/{ex.file}` | {threshold_text(ex.points)} | "
                    f"{', '.join(map(str, ex.depends_on)) or '-'} |")
    return "\n".join(rows)


def readme_text(*, harness: str, fail_under: float, notebooks: bool) -> str:
    text = README_TEMPLATE.read_text(encoding="utf-8")
    notebook_note = (
        "Prefer notebooks? `exercises/notebooks/` holds one per exercise; its last cell grades "
        "the code you ran in the notebook (`from grader import check; check(3)`). The grading "
        "workflow grades `exercises/`: there, a notebook named like the file it replaces "
        "(`exercises/ex03_cross_attention.ipynb`) stands in for a `.py` file that is absent."
        if notebooks else
        "A notebook named like the file it replaces (`exercises/ex03_cross_attention.ipynb`) "
        "stands in for a `.py` file that is absent.")
    values = {
        "version": __version__,
        "harness": harness,
        "exercise_table": exercise_table(),
        "max_total": threshold_text(registry.max_total()),
        "fail_under": threshold_text(fail_under),
        "notebook_note": notebook_note,
    }
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    left = re.findall(r"\{\{\w+\}\}", text)
    if left:  # pragma: no cover - a placeholder without a value
        raise GraderError(f"{README_TEMPLATE} has unknown placeholders {left}")
    return text


def pyproject_text(harness: str) -> str:
    return f"""\
# The student repository: installs the grader, pinned to the version this
# course was written for.  `pip install -c constraints.txt -e .`
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "attn-grade-exercises"
version = "{__version__}"
description = "Exercises of the attention & Transformer course, graded by attn-grade"
requires-python = ">=3.10,<3.13"
dependencies = [
    {json.dumps(harness)},
]

[tool.setuptools]
packages = []
py-modules = []
"""


def check_harness(harness: str) -> str:
    """A requirement naming attn-grade (kept for callers of the old API)."""
    return check_requirement_text(harness.strip())


def check_course(source: Path) -> Path:
    """The course's exercises/ folder, once it is known to be up to date with solutions/."""
    exercises = source / "exercises"
    if not exercises.is_dir():
        raise GraderError(f"no exercises/ folder in {source}",
                          hint="run export-student from the course repository (or pass --source)")
    solutions = source / "solutions"
    if solutions.is_dir():
        from grader.authoring.generate import generate

        stale = generate(solutions, exercises, check=True)
        if stale:
            raise GraderError("exercises/ is out of date with solutions/: "
                              + ", ".join(p.name for p in stale),
                              hint="run `attn-grade generate` first")
    for ex in registry.EXERCISES:
        if not (exercises / ex.file).exists():
            raise GraderError(f"missing stub {exercises / ex.file}", hint="run `attn-grade generate` first")
    return exercises


def student_files(source: Path, *, harness: Harness,
                  fail_under: float | None = None) -> dict[str, str | Path]:
    """{path in the student repository: text, or a file to copy} (after `check_course`)."""
    exercises = source / "exercises"
    files: dict[str, str | Path] = {}
    for ex in registry.EXERCISES:
        stub = exercises / ex.file
        if not stub.exists():
            raise GraderError(f"missing stub {stub}", hint="run `attn-grade generate` first")
        files[f"exercises/{ex.file}"] = stub
    notebooks = sorted((exercises / "notebooks").glob("*.ipynb"))
    for notebook in notebooks:
        files[f"exercises/notebooks/{notebook.name}"] = notebook
    threshold = registry.max_total() if fail_under is None else fail_under
    files["README.md"] = readme_text(harness=harness.description, fail_under=threshold,
                                     notebooks=bool(notebooks))
    files["pyproject.toml"] = pyproject_text(harness.requirement)
    constraints = source / "constraints.txt"
    lines = constraints.read_text(encoding="utf-8").splitlines() if constraints.exists() else []
    if lines or harness.constraints:
        files["constraints.txt"] = "\n".join(lines + harness.constraints) + "\n"
    if harness.wheel is not None:
        files[f"dist/{harness.wheel.name}"] = harness.wheel
    files[WORKFLOW_PATH] = workflow_text(threshold)
    files[".gitignore"] = GITIGNORE
    return files


def export_student(dest: Path, source: Path = Path("."), *, harness: str | None = None,
                   fail_under: float | None = None, force: bool = False) -> list[Path]:
    """Write the student repository into `dest`; returns the files written.
    `harness`: what it installs the grader from (grader/harness.py; default: a
    wheel of this harness in dist/)."""
    source, dest = source.resolve(), dest.resolve()
    if dest == source or dest in source.parents:
        raise GraderError(f"{dest} holds the course repository itself; export somewhere else")
    if dest.exists() and not dest.is_dir():
        raise GraderError(f"{dest} exists and is not a folder")
    if dest.exists() and any(dest.iterdir()) and not force:
        raise GraderError(f"{dest} is not empty", hint="pass --force to overwrite the exported files")
    check_course(source)            # before building a wheel for nothing
    with tempfile.TemporaryDirectory(prefix="attn-grade-export-") as work:
        resolved = resolve_harness(harness, Path(work))
        files = student_files(source, harness=resolved, fail_under=fail_under)
        binary = {name: item for name, item in files.items() if name.startswith("dist/")}
        texts = {name: (item.read_text(encoding="utf-8") if isinstance(item, Path) else item)
                 for name, item in files.items() if name not in binary}
        leaks = find_leaks(texts, source / "solutions")
        if leaks:
            raise GraderError("refusing to export: solution code in " + "; ".join(map(str, leaks[:5])),
                              hint="a solution line must stay between # BEGIN SOLUTION / # END SOLUTION")
        for stale in ("exercises", "dist"):
            if force and (dest / stale).is_dir():
                shutil.rmtree(dest / stale)  # no stale stubs, notebooks or wheels from an older export
        written = []
        for name, text in texts.items():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            written.append(target)
        for name, path in binary.items():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
            written.append(target)
    return written
