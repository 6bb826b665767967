"""Notebook files (.ipynb), read and written through nbformat.

- Reading a submission: `read_notebook` (nbformat 3 and 4, upgraded to 4 and
  validated, with messages a student can act on) and `notebook_module`, the
  contract's rule for turning a notebook into one module: its code cells in
  order, cells tagged `skip` left out, lines starting with `!` or `%` left
  out (`code_lines`, through IPython's own input transformer when IPython is
  installed, a plain pattern otherwise), and so are the statements that grade
  the notebook itself (`from grader import check`, `check(3)`).
- Writing the generated notebooks: `new_notebook`, `markdown_cell`,
  `code_cell` and `dumps` (nbformat's on-disk layout).

Nothing here executes a notebook.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import nbformat.validator
import nbformat.warnings
from nbformat import v4

from grader.errors import GraderError

NBFORMAT, NBFORMAT_MINOR = 4, 5
SAVE_AGAIN = "save it again from Jupyter or Colab (File > Download > .ipynb)"


class NotebookError(GraderError):
    """A notebook file that cannot be used, with the reason in a student's terms."""


# ------------------------------------------------------------------ reading
def read_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook at `path`, as nbformat 4, validated."""
    name = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NotebookError(f"{name} cannot be read ({exc.strerror or exc})") from None
    if not raw.strip():
        raise NotebookError(f"{name} is empty (0 bytes of notebook): it was not saved completely; "
                            f"{SAVE_AGAIN}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NotebookError(f"{name} is not a readable notebook (not UTF-8 text: is it really an "
                            ".ipynb file?)") from None
    try:
        data = json.loads(text)   # first, for the line and column of broken JSON
    except ValueError as exc:
        where = f" at line {exc.lineno}, column {exc.colno}" if hasattr(exc, "lineno") else ""
        reason = getattr(exc, "msg", str(exc))
        raise NotebookError(f"{name} is not a readable notebook: its JSON is broken{where} "
                            f"({reason}). It was probably cut short or edited by hand; "
                            f"{SAVE_AGAIN}") from None
    if not isinstance(data, dict):
        raise NotebookError(f"{name} is not a Jupyter notebook (the JSON is not an object)")
    if not isinstance(data.get("cells", data.get("worksheets")), list):
        raise NotebookError(f"{name} is not a Jupyter notebook (it has no list of cells)")
    try:
        with warnings.catch_warnings():   # missing cell ids: normalize() fills them in below
            warnings.simplefilter("ignore", nbformat.warnings.MissingIDFieldWarning)
            notebook = nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds for odd files
        raise NotebookError(f"{name} is not a Jupyter notebook nbformat can read "
                            f"({_first_line(exc)}); {SAVE_AGAIN}") from None
    try:
        # Older files lack cell ids and the like: fill in what nbformat can,
        # then validate what is left.
        _, normalized = nbformat.validator.normalize(notebook)
        notebook = nbformat.from_dict(normalized)
        nbformat.validate(notebook)
    except nbformat.ValidationError as exc:
        raise NotebookError(f"{name} is not a valid notebook ({_where(exc)}: "
                            f"{_first_line(exc)}); {SAVE_AGAIN}") from None
    return notebook


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return text.strip().splitlines()[0][:200]


def _where(exc: nbformat.ValidationError) -> str:
    path = list(getattr(exc, "absolute_path", []) or [])
    if len(path) >= 2 and path[0] == "cells" and isinstance(path[1], int):
        return f"cell {path[1] + 1}"
    return "/".join(map(str, path)) or "the notebook"


# Cell magics whose body is not Python: the whole cell is left out.
FOREIGN_CELL_MAGICS = frozenset({
    "bash", "sh", "script", "writefile", "file", "html", "javascript", "js", "latex", "markdown",
    "svg", "perl", "ruby", "python2", "pypy", "sql", "capture_output_to_file", "system", "sx"})
# The fallback without IPython: `!cmd`, `%magic`, `obj?` (not a line starting with `!=`).
_MAGIC_LINE = re.compile(r"^\s*(%|!(?!=))")
_HELP_LINE = re.compile(r"^\s*[\w.\[\]()'\"]*\?{1,2}\s*$|^\s*\?{1,2}[\w.]+\s*$")


def code_lines(source: str) -> list[str] | None:
    """One code cell's lines as the module gets them (None: leave the cell
    out).  The contract: lines starting with `!` or `%` are left out; so are
    `obj?` help lines, and cells whose `%%magic` runs another language.
    Blanked lines keep their place, so line numbers stay the cell's."""
    lines = source.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        return lines
    head = lines[first].strip()
    if head.startswith("%%"):
        magic = head[2:].split(None, 1)[0] if head[2:].strip() else ""
        if magic in FOREIGN_CELL_MAGICS:
            return None
        lines = lines[:first] + [""] + lines[first + 1:]   # `%%time`: its body is Python
    ipython = _ipython_shell_lines(lines)
    if ipython is not None:
        return ["" if i in ipython else ln for i, ln in enumerate(lines)]
    return [("" if _MAGIC_LINE.match(ln) or _HELP_LINE.match(ln) else ln) for ln in lines]


def _ipython_shell_lines(lines: list[str]) -> set[int] | None:
    """The indices of the lines IPython itself would turn into shell, magic or
    help calls; None when IPython is absent or the lines do not map one to one."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return None
    try:
        out = TransformerManager().transform_cell("\n".join(lines) + "\n").splitlines()
    except Exception:  # noqa: BLE001 - IPython's own syntax errors: let ast report them
        return None
    if len(out) != len(lines):
        return None
    return {i for i, (before, after) in enumerate(zip(lines, out))
            if before != after and "get_ipython()" in after and "get_ipython()" not in before}


def is_grader_statement(node: ast.stmt) -> bool:
    """`import grader`, `from grader import check`, `check(3)`, `grader.check(3)`."""
    if isinstance(node, ast.Import):
        return all(a.name.split(".")[0] == "grader" for a in node.names)
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").split(".")[0] == "grader"
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        func = node.value.func
        return (isinstance(func, ast.Name) and func.id == "check") or (
            isinstance(func, ast.Attribute) and func.attr == "check"
            and isinstance(func.value, ast.Name) and func.value.id == "grader")
    return False


def _without_grader_statements(lines: list[str]) -> list[str]:
    """The cell with its `from grader import check` / `check(N)` statements
    blanked: they grade the notebook, they are not part of the solution."""
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return lines   # the syntax error is reported where the module is checked
    out = list(lines)
    for node in tree.body:
        if is_grader_statement(node):
            for i in range(node.lineno - 1, node.end_lineno):
                out[i] = ""
    return out


@dataclass
class NotebookModule:
    """A notebook's code, as the one module the contract makes of it."""

    text: str
    cells: list[tuple[int, int]] = field(default_factory=list)   # (first module line, cell number)
    heads: dict[int, str] = field(default_factory=dict)          # cell number -> its first line
    code_cells: int = 0


def notebook_module(path: Path) -> NotebookModule:
    """Code cells in order (cells tagged `skip` and `!`/`%` lines left out).
    Cell numbers count every cell from the top, markdown included, as a
    student counts them on the screen."""
    notebook = read_notebook(path)
    lines: list[str] = []
    module = NotebookModule(text="")
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        module.code_cells += 1
        if "skip" in (cell.get("metadata", {}).get("tags") or []):
            continue
        kept = code_lines(cell.get("source", ""))
        if kept is None:
            continue
        kept = _without_grader_statements(kept)
        module.cells.append((len(lines) + 1, number))
        module.heads[number] = next((ln.strip() for ln in kept if ln.strip()), "")
        lines.extend(kept)
        lines.append("")
    module.text = "\n".join(lines) + "\n"
    return module


# ------------------------------------------------------------------ writing
def markdown_cell(text: str, *, cell_id: str) -> nbformat.NotebookNode:
    return v4.new_markdown_cell(source=text, id=cell_id)


def code_cell(text: str, *, cell_id: str, tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    metadata = {"tags": list(tags)} if tags else {}
    return v4.new_code_cell(source=text, id=cell_id, metadata=metadata)


def new_notebook(cells: list[nbformat.NotebookNode], metadata: dict) -> nbformat.NotebookNode:
    notebook = v4.new_notebook(cells=cells, metadata=metadata)
    notebook.nbformat, notebook.nbformat_minor = NBFORMAT, NBFORMAT_MINOR
    nbformat.validate(notebook)
    return notebook


def dumps(notebook: nbformat.NotebookNode) -> str:
    """nbformat's on-disk layout (stable for the same notebook)."""
    text = nbformat.writes(notebook, version=NBFORMAT)
    return text if text.endswith("\n") else text + "\n"
