"""Locate a submission (a folder of .py and/or .ipynb files, or one notebook)
and turn it into module sources, checked without ever executing them.

The judge only reads student files as text (and parses them with `ast`);
they are executed in the worker alone, from a staging copy, so grading never
writes into the submission folder.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from grader import registry
from grader.errors import GraderError

_TRACE_LINE = re.compile(r'File "(\w+)\.py", line (\d+)')

REFERENCE_PACKAGE = "grader.reference"   # the grader's earlier exercises (grader/reference/)

# Modules a student file must not shadow in the worker.
_PROTECTED = {"torch", "grader", "numpy", "pytest", "hypothesis", "rich", "click", "nbformat"}


@dataclass
class SourceFile:
    module: str
    text: str
    origin: str                         # the path a student recognises
    kind: str = "py"                    # "py" or "ipynb"
    # For notebooks: (first line in the module, cell number) for each code cell.
    cells: list[tuple[int, int]] = field(default_factory=list)
    problem: str = ""                   # why it cannot be used (corrupt notebook...)
    heads: dict[int, str] = field(default_factory=dict)   # notebook cell number -> its first line

    def locate(self, line: int) -> str:
        """Where line `line` of the module is, in the student's own terms."""
        if self.kind != "ipynb" or not self.cells:
            return f"{self.origin}, line {line}"
        start, cell = self.cells[0]
        for first, number in self.cells:
            if first <= line:
                start, cell = first, number
        return f"{self.origin}, cell {cell}, line {line - start + 1}"

    def describe(self, line: int) -> str:
        """`locate`, plus the first line of a notebook cell (cells have no
        numbers on the screen, their first lines are what a student sees)."""
        where = self.locate(line)
        if self.kind == "ipynb" and self.cells:
            cell = max((c for c in self.cells if c[0] <= line), default=self.cells[0])[1]
            head = self.heads.get(cell, "")
            if head:
                where += f" (the cell starting {head[:60]!r})"
        return where


class NotebookError(GraderError):
    pass


@dataclass
class Submission:
    root: Path
    files: dict[str, SourceFile]

    @property
    def label(self) -> str:
        return str(self.root)

    @classmethod
    def from_path(cls, path: str | Path) -> "Submission":
        root = Path(path).expanduser()
        if not root.exists():
            raise GraderError(f"submission not found: {root}",
                              hint="pass --submission PATH (a folder of exercise files or a notebook)")
        files: dict[str, SourceFile] = {}
        if root.is_file():
            if root.suffix not in (".ipynb", ".py"):
                raise GraderError(f"{root} is neither a folder, a .py file nor a notebook")
            source = _single_file(root)
            files[source.module] = source
            submission = cls(root, files)
            _dependencies_near(submission, root)
            submission._flag_wrong_exercises()
            return submission
        for py in sorted(root.glob("*.py")):
            if py.stem in _PROTECTED or py.stem.startswith("test_") or py.stem == "setup":
                continue
            if registry.by_module(py.stem) is None and importlib.util.find_spec(py.stem) is not None:
                continue  # would shadow an installed module (e.g. a stray `random.py`)
            files[py.stem] = SourceFile(py.stem, _read_text(py), str(py))
        notebooks = sorted(root.glob("*.ipynb"))
        for nb in notebooks:
            if registry.by_module(nb.stem) is None:
                continue
            if nb.stem in files:
                continue  # the .py file wins over a notebook of the same exercise
            files[nb.stem] = _notebook_or_problem(nb)
        for nb in notebooks:  # `Copy of ex03_cross_attention.ipynb`, `ex03_... (1).ipynb`
            module = module_for_name(nb.stem)
            if module is not None and module not in files:
                files[module] = _notebook_or_problem(nb, module)
        submission = cls(root, files)
        submission._flag_wrong_exercises()
        return submission

    def relabel(self, text: str) -> str:
        """Rewrite the worker's `File "ex03_cross_attention.py", line 12` (the
        staged module) as `File "ex03_cross_attention.ipynb", cell 4, line 2`
        for the files that came from notebooks."""
        def swap(match: re.Match) -> str:
            source = self.files.get(match.group(1))
            if source is None or source.kind != "ipynb" or not source.cells:
                return match.group(0)
            where = source.locate(int(match.group(2)))
            name, _, rest = where.partition(", ")
            return f'File "{Path(name).name}", {rest}'
        return _TRACE_LINE.sub(swap, text) if text else text

    def relabel_report(self, report) -> None:
        """`relabel` every message and traceback of a Report, in place."""
        for exercise in report.exercises:
            for test in exercise.tests:
                test.traceback = self.relabel(test.traceback)
                test.message = self.relabel(test.message)

    def _flag_wrong_exercises(self) -> None:
        for source in self.files.values():
            if not source.problem:
                source.problem = wrong_exercise_problem(source)

    def has(self, module: str) -> bool:
        return module in self.files

    def stage(self, dest: Path, provided: dict[str, str] | None = None) -> Path:
        """Write the module sources into `dest` (a fresh temp folder).
        `provided` ({module: source}) stands in for the submission's own
        files of those modules: the grader's reference of the exercises the
        graded one imports (grader/reference/)."""
        dest.mkdir(parents=True, exist_ok=True)
        provided = provided or {}
        for module, source in self.files.items():
            if source.problem or module in provided:
                continue
            (dest / f"{module}.py").write_text(source.text, encoding="utf-8")
        for module, text in provided.items():
            (dest / f"{module}.py").write_text(text, encoding="utf-8")
        return dest

    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for module in sorted(self.files):
            digest.update(module.encode() + b"\0" + self.files[module].text.encode() + b"\0")
        return digest.hexdigest()

    # ------------------------------------------------------------ static checks
    def syntax_error(self, module: str) -> str | None:
        source = self.files[module]
        if source.problem:
            return source.problem
        try:
            ast.parse(source.text, filename=f"{module}.py")
        except SyntaxError as exc:
            message = f"syntax error in {source.describe(exc.lineno or 0)}: {exc.msg}"
            if exc.text and exc.text.strip():
                text = exc.text.rstrip("\n")
                indent = len(text) - len(text.lstrip())
                message += f"\n    {text.strip()}"
                if exc.offset and exc.offset > indent:
                    message += "\n    " + " " * (exc.offset - 1 - indent) + "^"
            return message
        return None

    def sibling_imports(self, module: str) -> set[str]:
        """The other exercise modules `module` imports, by bare name."""
        tree = _parse(self.files[module].text)
        found: set[str] = set()
        if tree is None:
            return found
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
        return {m for m in found if registry.by_module(m) is not None and m != module}

    def imports_closure(self, module: str) -> set[str]:
        """The other exercise modules `module` imports, directly or not."""
        seen: set[str] = set()
        todo = [module]
        while todo:
            current = todo.pop()
            if not self.has(current):
                continue
            for dep in self.sibling_imports(current):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    def grader_imports(self, module: str) -> list[str]:
        """Imports of the grader's reference exercises (`grader.reference`):
        the grader's own work, never a student's.  (A notebook's
        `from grader.notebook import check` cell is fine.)"""
        tree = _parse(self.files[module].text) if module in self.files else None
        if tree is None:
            return []
        hits = []
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                if name == REFERENCE_PACKAGE or name.startswith(REFERENCE_PACKAGE + "."):
                    hits.append(f"{name} ({self.files[module].locate(node.lineno)})")
                    break
        return sorted(set(hits))

    def forbidden_uses(self, module: str, forbidden: tuple[str, ...],
                       scope: tuple[str, ...] = ()) -> list[str]:
        """Forbidden built-ins named in the code (outside `if __name__ ==
        "__main__":` blocks, where students compare against torch): the static
        half of the check; the worker's tripwires are the dynamic half."""
        if module not in self.files:
            return []
        tree = _parse(self.files[module].text)
        if tree is None:
            return []
        attrs = {name.rsplit(".", 1)[-1]: name for name in forbidden}
        siblings = {m for m in self.sibling_imports(module)} | {module}
        roots: list[ast.AST] = []
        if scope:
            roots = [n for n in ast.walk(tree)
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name in scope]
        else:
            roots = [n for n in tree.body if not _is_main_block(n)]
        hits: list[str] = []
        for root in roots:
            for node in ast.walk(root):
                name = None
                if isinstance(node, ast.Attribute) and node.attr in attrs:
                    base = node.value
                    while isinstance(base, ast.Attribute):
                        base = base.value
                    if not (isinstance(base, ast.Name) and base.id in siblings):
                        name = attrs[node.attr]
                elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("torch"):
                    for alias in node.names:
                        if alias.name in attrs:
                            name = attrs[alias.name]
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                      and node.func.id == "getattr" and len(node.args) >= 2
                      and isinstance(node.args[1], ast.Constant) and node.args[1].value in attrs):
                    name = attrs[node.args[1].value]
                if name:
                    line = getattr(node, "lineno", 0)
                    hits.append(f"{name} ({self.files[module].locate(line)})")
        return sorted(set(hits))


def _is_main_block(node: ast.AST) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def _parse(text: str):
    try:
        return ast.parse(text)
    except SyntaxError:
        return None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return path.read_text(encoding="latin-1")


# ------------------------------------------------------------------ notebooks
# The names each exercise's file defines (the contract's API): how a file
# holding another exercise's code is recognised.  tests/test_notebooks.py
# checks this table against solutions/.
CONTRACT_NAMES: dict[str, tuple[str, ...]] = {
    "ex01_attention": ("scaled_dot_product_attention", "SelfAttention"),
    "ex02_masks": ("causal_mask", "padding_mask", "masked_attention", "MaskedSelfAttention"),
    "ex03_cross_attention": ("Attention",),
    "ex04_multi_head": ("MultiHeadAttention",),
    "ex05_positional_encoding": ("sinusoidal_encoding", "PositionalEncoding"),
    "ex06_blocks": ("FeedForward", "EncoderLayer", "DecoderLayer"),
    "ex07_transformer": ("Transformer", "greedy_decode"),
    "ex08_training": ("noam_lr", "label_smoothed_cross_entropy", "make_optimizer", "train_step",
                      "save_checkpoint", "load_checkpoint", "train"),
}

# Cell magics whose body is not Python: the whole cell is left out.
_FOREIGN_CELL_MAGICS = {"bash", "sh", "script", "writefile", "file", "html", "javascript", "js",
                        "latex", "markdown", "svg", "perl", "ruby", "python2", "pypy", "sql",
                        "capture_output_to_file", "system", "sx"}
# `!cmd` and `%magic` (but not a continuation line starting with `!=`).
_MAGIC_LINE = re.compile(r"^\s*(%|!(?!=))")
_HELP_LINE = re.compile(r"^\s*[\w.\[\]()'\"]*\?{1,2}\s*$|^\s*\?{1,2}[\w.]+\s*$")


def notebook_lines(source: str) -> list[str] | None:
    """One code cell's lines as the module gets them (None: leave the cell
    out).  The contract: lines starting with `!` or `%` are left out; so are
    `obj?` help lines, and cells whose `%%magic` runs another language."""
    lines = source.splitlines()
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if first.startswith("%%"):
        magic = first[2:].split(None, 1)[0] if first[2:].strip() else ""
        if magic in _FOREIGN_CELL_MAGICS:
            return None
    return [("" if _MAGIC_LINE.match(ln) or _HELP_LINE.match(ln) else ln) for ln in lines]


def _cell_source(cell: dict, key: str = "source") -> str:
    source = cell.get(key, "")
    if isinstance(source, list):
        return "".join(str(part) for part in source)
    if isinstance(source, str):
        return source
    raise TypeError(type(source).__name__)


def _load_notebook_json(path: Path) -> dict:
    name = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NotebookError(f"{name} cannot be read ({exc.strerror or exc})") from None
    if not raw.strip():
        raise NotebookError(f"{name} is empty (0 bytes of notebook): it was not saved completely; "
                            "save it again from Jupyter or Colab (File > Download > .ipynb)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NotebookError(f"{name} is not a readable notebook (not UTF-8 text: is it really an "
                            ".ipynb file?)") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        where = f" at line {exc.lineno}, column {exc.colno}" if hasattr(exc, "lineno") else ""
        reason = getattr(exc, "msg", str(exc))
        raise NotebookError(f"{name} is not a readable notebook: its JSON is broken{where} "
                            f"({reason}). It was probably cut short or edited by hand; save it "
                            "again from Jupyter or Colab (File > Download > .ipynb)") from None
    if not isinstance(data, dict):
        raise NotebookError(f"{name} is not a Jupyter notebook (the JSON is not an object)")
    if "worksheets" in data and "cells" not in data:       # nbformat 3: cells inside worksheets
        cells = []
        for sheet in data.get("worksheets") or []:
            for cell in (sheet or {}).get("cells") or []:
                if isinstance(cell, dict) and cell.get("cell_type") == "code" and "input" in cell:
                    cell = dict(cell, source=cell["input"])
                cells.append(cell)
        data = dict(data, cells=cells)
    if not isinstance(data.get("cells"), list):
        raise NotebookError(f"{name} is not a Jupyter notebook (it has no list of cells)")
    return data


def notebook_source(path: Path) -> SourceFile:
    """A notebook's code cells, in order, as one module (the contract's rules:
    cells tagged `skip` and lines starting with `!` or `%` are left out).
    Cell numbers count every cell from the top, markdown included, as a
    student counts them on the screen."""
    data = _load_notebook_json(path)
    lines: list[str] = []
    cells: list[tuple[int, int]] = []
    heads: dict[int, str] = {}
    code_cells = 0
    for number, cell in enumerate(data["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        code_cells += 1
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        tags = metadata.get("tags") if isinstance(metadata.get("tags"), list) else []
        if "skip" in tags:
            continue
        try:
            source = _cell_source(cell)
        except TypeError as kind:
            raise NotebookError(f"{path.name}: cell {number} is damaged (its source is a {kind}, "
                                "not text); save the notebook again from Jupyter or Colab") from None
        kept = notebook_lines(source)
        if kept is None:
            continue
        cells.append((len(lines) + 1, number))
        heads[number] = next((ln.strip() for ln in kept if ln.strip()), "")
        lines.extend(kept)
        lines.append("")
    text = "\n".join(lines) + "\n"
    source_file = SourceFile(path.stem, text, str(path), kind="ipynb", cells=cells, heads=heads)
    if not text.strip():
        source_file.problem = (f"{path.name} holds no code" + (
            "" if code_cells else " (it has no code cells)") + ": write your solution in its code "
            "cells (cells tagged `skip` are left out)")
    return source_file


def _notebook_or_problem(path: Path, module: str | None = None) -> SourceFile:
    """A broken notebook costs its own exercise, never the whole submission."""
    try:
        source = notebook_source(path)
    except NotebookError as exc:
        source = SourceFile(path.stem, "", str(path), kind="ipynb", problem=exc.message)
    if module:
        source.module = module
    return source


def defined_names(text: str) -> set[str] | None:
    """Top-level names a module binds (def, class, assignment, import);
    None when it cannot be told (syntax error, `import *`)."""
    tree = _parse(text)
    if tree is None:
        return None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add((alias.asname or alias.name).split(".")[0])
    return names


def exercises_defined(text: str) -> list[str]:
    """Exercise modules whose contract names `text` defines itself (def or
    class or assignment, not imports), most names first."""
    tree = _parse(text)
    if tree is None:
        return []
    own: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                own.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    scores = [(len(own & set(names)), module) for module, names in CONTRACT_NAMES.items()]
    return [module for count, module in sorted(scores, key=lambda s: (-s[0], s[1])) if count]


def wrong_exercise_problem(source: SourceFile) -> str:
    """'this file holds exercise K's code' when the file defines none of its
    own exercise's names but some of another's; '' otherwise."""
    expected = CONTRACT_NAMES.get(source.module)
    if not expected or source.problem:
        return ""
    names = defined_names(source.text)
    if names is None or names & set(expected):
        return ""
    others = [m for m in exercises_defined(source.text) if m != source.module]
    if not others:
        return ""
    other = registry.by_module(others[0])
    mine = registry.by_module(source.module)
    found = [n for n in CONTRACT_NAMES[others[0]] if n in names]
    kind = "notebook" if source.kind == "ipynb" else "file"
    suffix = ".ipynb" if source.kind == "ipynb" else ".py"
    return (f"{Path(source.origin).name} holds the code of exercise {other.number} "
            f"({other.slug}), not exercise {mine.number} ({mine.slug}): it defines "
            f"{', '.join(found)} but none of {', '.join(expected)}. Save your exercise "
            f"{mine.number} {kind} under this name, or rename this one {other.module}{suffix}.")


def module_for_name(stem: str) -> str | None:
    """The exercise module a file name stands for: exact (`ex03_cross_attention`)
    or inside a longer name (`Copy of ex03_cross_attention`, `ex03_cross_attention (1)`)."""
    if registry.by_module(stem) is not None:
        return stem
    lowered = stem.lower()
    for exercise in registry.EXERCISES:
        if exercise.module in lowered:
            return exercise.module
    match = re.search(r"(?<![a-z0-9])ex0?(\d)(?!\d)", lowered)
    if match:
        number = int(match.group(1))
        if any(e.number == number for e in registry.EXERCISES):
            return registry.get(number).module
    return None


def _single_file(path: Path) -> SourceFile:
    """One notebook or .py file given as the whole submission."""
    module = module_for_name(path.stem)
    if path.suffix == ".ipynb":
        source = _notebook_or_problem(path)
    else:
        source = SourceFile(path.stem, _read_text(path), str(path))
    if module is None and not source.problem:
        found = exercises_defined(source.text)
        module = found[0] if found else None
    if module is None:
        names = ", ".join(e.notebook if path.suffix == ".ipynb" else e.file
                          for e in registry.EXERCISES[:3])
        raise GraderError(f"{path.name}: cannot tell which exercise this file is",
                          hint=f"name it after the exercise ({names}, ...)")
    source.module = module
    return source


def _dependencies_near(submission: "Submission", path: Path) -> None:
    """For a single-file submission: the other exercise files it imports,
    from its folder (then the folder above, where exercises/ sits when the
    notebook is in exercises/notebooks/), a .py before a notebook."""
    todo = [m for m in submission.files]
    while todo:
        module = todo.pop()
        if submission.files[module].problem:
            continue
        for dep in sorted(submission.sibling_imports(module)):
            if dep in submission.files:
                continue
            for folder in (path.parent, path.parent.parent):
                py, nb = folder / f"{dep}.py", folder / f"{dep}.ipynb"
                if py.is_file():
                    submission.files[dep] = SourceFile(dep, _read_text(py), str(py))
                elif nb.is_file():
                    submission.files[dep] = _notebook_or_problem(nb)
                else:
                    continue
                todo.append(dep)
                break
