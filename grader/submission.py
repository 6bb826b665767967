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
from dataclasses import dataclass, field
from pathlib import Path

from grader import registry
from grader.errors import GraderError

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

    def locate(self, line: int) -> str:
        """Where line `line` of the module is, in the student's own terms."""
        if self.kind != "ipynb" or not self.cells:
            return f"{self.origin}, line {line}"
        start, cell = self.cells[0]
        for first, number in self.cells:
            if first <= line:
                start, cell = first, number
        return f"{self.origin}, cell {cell}, line {line - start + 1}"


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
            if root.suffix == ".ipynb":
                source = _notebook_or_problem(root)
            elif root.suffix == ".py":
                source = SourceFile(root.stem, _read_text(root), str(root))
            else:
                raise GraderError(f"{root} is neither a folder, a .py file nor a notebook")
            files[source.module] = source
            return cls(root, files)
        for py in sorted(root.glob("*.py")):
            if py.stem in _PROTECTED or py.stem.startswith("test_") or py.stem == "setup":
                continue
            if registry.by_module(py.stem) is None and importlib.util.find_spec(py.stem) is not None:
                continue  # would shadow an installed module (e.g. a stray `random.py`)
            files[py.stem] = SourceFile(py.stem, _read_text(py), str(py))
        for nb in sorted(root.glob("*.ipynb")):
            if registry.by_module(nb.stem) is None:
                continue
            if nb.stem in files:
                continue  # the .py file wins over a notebook of the same exercise
            files[nb.stem] = _notebook_or_problem(nb)
        return cls(root, files)

    def has(self, module: str) -> bool:
        return module in self.files

    def stage(self, dest: Path) -> Path:
        """Write the module sources into `dest` (a fresh temp folder)."""
        dest.mkdir(parents=True, exist_ok=True)
        for module, source in self.files.items():
            if source.problem:
                continue
            (dest / f"{module}.py").write_text(source.text, encoding="utf-8")
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
            return f"syntax error in {source.locate(exc.lineno or 0)}: {exc.msg}"
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
def notebook_source(path: Path) -> SourceFile:
    """A notebook's code cells, in order, as one module (the contract's rules:
    cells tagged `skip` and lines starting with `!` or `%` are left out)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NotebookError(f"{path} is not a readable notebook ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotebookError(f"{path} is not a Jupyter notebook (no cells)")
    lines: list[str] = []
    cells: list[tuple[int, int]] = []
    for number, cell in enumerate(data["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        tags = (cell.get("metadata") or {}).get("tags") or []
        if "skip" in tags:
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        kept = [("" if ln.lstrip().startswith(("!", "%")) else ln) for ln in source.splitlines()]
        cells.append((len(lines) + 1, number))
        lines.extend(kept)
        lines.append("")
    text = "\n".join(lines) + "\n"
    return SourceFile(path.stem, text, str(path), kind="ipynb", cells=cells)


def _notebook_or_problem(path: Path) -> SourceFile:
    """A broken notebook costs its own exercise, never the whole submission."""
    try:
        return notebook_source(path)
    except NotebookError as exc:
        return SourceFile(path.stem, "", str(path), kind="ipynb", problem=exc.message)
