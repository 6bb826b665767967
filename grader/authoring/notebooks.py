"""One notebook per exercise, built from the stub and its solution's lesson.

    cell 1  markdown  the lesson: title, key equation (registry), the
                      solution's module docstring (equations, shapes, usual
                      mistakes) and how to work and check in the notebook
    cell 2  code      setup, tagged `skip` (not graded): makes the other
                      exercise files importable
    cell 3  code      the stub's imports
    cell 4… code      one cell per function or class of the stub
    last    code      `from grader import check; check(N)`, tagged `skip`

The notebook is built and written with nbformat (grader/notebook_files.py),
with cell ids derived from the exercise and the cell's index, so the same
stub always gives the same bytes.
"""

from __future__ import annotations

import ast
import re

from grader import notebook_files, registry
from grader.registry import Exercise

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"name": "python"}

SETUP = '''\
# Setup: this cell is tagged `skip`, so the grader leaves it out.
# It lets this notebook import your other exercise files (e.g. ex02_masks.py)
# from this folder or the one above it. On Colab, upload those files next to
# the notebook and install the course's grader as your instructor explains.
import os
import sys

for _folder in (os.getcwd(), os.path.dirname(os.getcwd())):
    if _folder not in sys.path:
        sys.path.insert(0, _folder)'''

CHECK = '''\
# Grade the code you have run in this notebook (tagged `skip`: not part of
# your solution). Run your cells first; re-run this cell after every change.
from grader import check

check({number})'''


def _cell_id(exercise: Exercise, index: int, kind: str) -> str:
    return f"ex{exercise.number:02d}-{index:02d}-{kind}"


def _docstring(text: str) -> str:
    try:
        return ast.get_docstring(ast.parse(text), clean=True) or ""
    except SyntaxError:
        return ""


def lesson_markdown(exercise: Exercise, solution_text: str, imports: list[str]) -> str:
    """The lesson cell: the module docstring as Markdown, plus how to work here."""
    doc = _docstring(solution_text)
    lines = doc.splitlines()
    title = f"Exercise {exercise.number} · {exercise.title}"
    if lines and lines[0].lower().startswith(f"exercise {exercise.number}"):
        title = lines[0].rstrip(".")
        lines = lines[1:]
    body = "\n".join(lines).strip("\n")
    body = re.sub(r"``([^`]+)``", r"`\1`", body)          # reST literals -> Markdown code
    body = re.sub(r"::$", ":", body, flags=re.M)
    parts = [f"# {title}"]
    if exercise.lesson:
        parts.append(f"**Key idea:** {exercise.lesson}")
    if body:
        parts.append(body)
    deps = [f"`{m}.py`" for m in imports]
    howto = [
        "## How to work in this notebook",
        "",
        f"1. Fill in every `# TODO: Implement for Exercise {exercise.number}.` below "
        "(replace the `raise NotImplementedError`).",
        "2. Run the cells from the top, then the last cell: `check("
        f"{exercise.number})` grades the code you have run, in an isolated process.",
        f"3. Or save this notebook as `{exercise.notebook}` and run "
        f"`attn-grade exercise {exercise.number} --submission {exercise.notebook}`.",
        "",
        "The grader reads the code cells in order; cells tagged `skip` and lines "
        "starting with `!` or `%` are left out. Keep the names and signatures of the stub.",
    ]
    if deps:
        howto += ["", f"This exercise imports {', '.join(deps)}: keep your solution of "
                      f"{'that exercise' if len(deps) == 1 else 'those exercises'} next to this "
                      "notebook or in the folder above it."]
    parts.append("\n".join(howto))
    return "\n\n".join(parts)


def split_cells(stub: str) -> list[str]:
    """The stub's code after its docstring, cut into cells: the imports, then
    one cell per top-level function or class (with the comments above it)."""
    tree = ast.parse(stub)
    lines = stub.splitlines()
    body = list(tree.body)
    start = 0
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        start = body[0].end_lineno or 0
        body = body[1:]
    cuts: list[int] = []   # 0-based line index where a definition's cell starts
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
            while first - 1 >= start and lines[first - 1].lstrip().startswith("#"):
                first -= 1
            cuts.append(first)
    bounds = [start] + cuts + [len(lines)]
    cells = []
    for a, b in zip(bounds, bounds[1:]):
        text = "\n".join(lines[a:b]).strip("\n")
        if text.strip():
            cells.append(text)
    return cells


def exercise_imports(stub: str) -> list[str]:
    """The other exercise modules a stub imports (for the lesson's note)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(stub)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module.split(".")[0]]
        for name in names:
            if registry.by_module(name) is not None and name not in found:
                found.append(name)
    return found


def build_notebook(exercise: Exercise, stub: str, solution_text: str):
    def next_id(kind: str) -> str:
        return _cell_id(exercise, len(cells) + 1, kind)

    cells = []
    lesson = lesson_markdown(exercise, solution_text, exercise_imports(stub))
    cells.append(notebook_files.markdown_cell(lesson, cell_id=next_id("md")))
    cells.append(notebook_files.code_cell(SETUP, cell_id=next_id("code"), tags=("skip",)))
    for text in split_cells(stub):
        cells.append(notebook_files.code_cell(text, cell_id=next_id("code")))
    cells.append(notebook_files.code_cell(CHECK.format(number=exercise.number),
                                          cell_id=next_id("code"), tags=("skip",)))
    metadata = {"kernelspec": dict(KERNELSPEC), "language_info": dict(LANGUAGE_INFO),
                "attn_grade": {"exercise": exercise.number, "module": exercise.module}}
    return notebook_files.new_notebook(cells, metadata)


def notebook_text(exercise: Exercise, stub: str, solution_text: str) -> str:
    return notebook_files.dumps(build_notebook(exercise, stub, solution_text))
