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
import re
from dataclasses import dataclass, field
from pathlib import Path

from grader import registry
from grader.errors import GraderError
from grader.notebook_files import NotebookError, notebook_module
from grader.registry import CONTRACT_NAMES

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


@dataclass
class Submission:
    root: Path
    files: dict[str, SourceFile]

    @property
    def label(self) -> str:
        return str(self.root)

    @classmethod
    def from_path(cls, path: str | Path) -> "Submission":
        """The submission at `path` (see `resolve_path`)."""
        root = resolve_path(path)
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

    def require_exercise_files(self) -> None:
        """A folder without a single exercise file is a mistyped path: say
        which folder was probably meant (GraderError, exit 2), rather than
        grade eight missing files as zero."""
        if not any(registry.by_module(module) is not None for module in self.files):
            raise no_exercise_files(self.root)

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

    def reflective_uses(self, module: str) -> list[str]:
        """Reflective routes in the code (outside `if __name__ == "__main__":`
        blocks): run-time attribute names on torch, closure cells, class bases,
        frames, gc, ctypes, sys.modules, importlib, importing grader...  No
        exercise needs them; they can reach around the grader's checks."""
        if module not in self.files:
            return []
        tree = _parse(self.files[module].text)
        if tree is None:
            return []
        body = ast.Module(body=[n for n in tree.body if not _is_main_block(n)], type_ignores=[])
        scan = _ReflectionScan(body)
        scan.visit(body)
        return [f"{what} ({self.files[module].locate(line)})" for line, what in sorted(set(scan.found))]

    def local_imports_closure(self, module: str) -> set[str]:
        """Every module of the submission that `module` imports, directly or
        not: exercise files and the student's own helper files."""
        seen: set[str] = set()
        todo = [module]
        while todo:
            current = todo.pop()
            tree = _parse(self.files[current].text) if self.has(current) else None
            if tree is None:
                continue
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name.split(".")[0] for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module.split(".")[0]]
                for name in names:
                    if name != module and name in self.files and name not in seen:
                        seen.add(name)
                        todo.append(name)
        return seen


# ------------------------------------------------------------------ reflection
# Routes around the grader's checks that no exercise needs: the judge flags
# them as `forbidden` for an instructor to review (the worker's tripwires are
# a second line, never the only one).
REFLECTIVE_MODULES = {"gc", "ctypes", "_ctypes", "importlib", "grader", "cffi"}
# What of them students do write, harmlessly: freeing memory in a training
# notebook, reloading an edited module, the notebook's self-check cell.
HARMLESS_USES = {("gc", "collect"), ("importlib", "reload"), ("grader", "check"),
                 ("grader.notebook", "check")}
REFLECTIVE_ATTRIBUTES = {
    "__closure__", "__bases__", "__base__", "__mro__", "__wrapped__", "__globals__",
    "__subclasses__", "__code__", "__builtins__", "__getattribute__", "__import__",
    "f_back", "f_globals", "f_locals", "f_builtins", "tb_frame", "gi_frame", "cr_frame", "ag_frame",
}
# sys.<name> and inspect.<name> that reach into the interpreter.
REFLECTIVE_SYS = {"modules", "_getframe", "_current_frames", "settrace", "setprofile",
                  "meta_path", "path_hooks", "addaudithook"}
REFLECTIVE_INSPECT = {"currentframe", "stack", "getouterframes", "getinnerframes", "trace",
                      "getclosurevars", "unwrap"}
RUN_TIME_CODE = {"eval", "exec", "compile"}
INTERPRETER_MODULES = {"gc", "importlib", "sys", "inspect", "builtins", "ctypes"}
TORCH_INTERNALS = {"_C", "_ops", "ops"}   # torch._C, torch._ops, torch.ops (the ATen operators)
NAME_FROM_STRING = {"getattr", "setattr", "delattr", "hasattr"}


class _ReflectionScan(ast.NodeVisitor):
    """Finds reflective routes in one module's syntax tree."""

    def __init__(self, tree: ast.AST) -> None:
        self.tree = tree
        self.found: list[tuple[int, str]] = []
        self.torch_names = _torch_aliases(tree)
        self.assigned: dict[str, list[ast.AST]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.assigned.setdefault(target.id, []).append(node.value)

    def flag(self, node: ast.AST, what: str) -> None:
        self.found.append((getattr(node, "lineno", 0), what))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name in ("gc", "importlib") and not alias.asname:
                continue  # its attributes are checked where used (HARMLESS_USES)
            if alias.name.split(".")[0] in REFLECTIVE_MODULES:
                self.flag(node, f"`import {alias.name}`")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        root = (node.module or "").split(".")[0]
        if node.level == 0 and root in REFLECTIVE_MODULES:
            names = [alias.name for alias in node.names]
            if any((node.module, name) not in HARMLESS_USES for name in names):
                self.flag(node, f"`from {node.module} import {', '.join(names)}`")
        elif node.level == 0 and root == "sys":
            for alias in node.names:
                if alias.name in REFLECTIVE_SYS:
                    self.flag(node, f"`from sys import {alias.name}`")
        elif node.level == 0 and root == "inspect":
            for alias in node.names:
                if alias.name in REFLECTIVE_INSPECT:
                    self.flag(node, f"`from inspect import {alias.name}`")
        elif node.level == 0 and root == "torch":
            for alias in node.names:
                if alias.name in TORCH_INTERNALS:
                    self.flag(node, f"torch internals (`from {node.module} import {alias.name}`)")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        base = node.value.id if isinstance(node.value, ast.Name) else None
        if node.attr in REFLECTIVE_ATTRIBUTES:
            self.flag(node, f"`{node.attr}`")
        elif base in ("gc", "importlib") and (base, node.attr) not in HARMLESS_USES:
            self.flag(node, f"`{base}.{node.attr}`")
        elif base == "sys" and node.attr in REFLECTIVE_SYS:
            self.flag(node, f"`sys.{node.attr}`")
        elif base == "inspect" and node.attr in REFLECTIVE_INSPECT:
            self.flag(node, f"`inspect.{node.attr}`")
        elif node.attr in TORCH_INTERNALS and self.rooted_at_torch(node.value):
            self.flag(node, f"torch internals (`{_snippet(node)}`)")
        elif node.attr == "__dict__" and self.rooted_at_torch(node.value):
            self.flag(node, f"`{_snippet(node)}` (torch's attributes looked up by a run-time name)")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and node.value in REFLECTIVE_ATTRIBUTES:
            self.flag(node, f"the name {node.value!r}")

    def visit_BinOp(self, node: ast.BinOp) -> None:
        self.built_name(node)
        self.generic_visit(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        self.built_name(node)
        self.generic_visit(node)

    def built_name(self, node: ast.AST) -> None:
        """`"__glob" + "als__"`, f-strings and joins that build a reflective name."""
        built = self.fold(node)
        if built in REFLECTIVE_ATTRIBUTES:
            self.flag(node, f"the name {built!r} built at run time")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func.id if isinstance(node.func, ast.Name) else None
        if isinstance(node.func, ast.Attribute) and node.func.attr == "join":
            self.built_name(node)
        if func in RUN_TIME_CODE:
            self.flag(node, f"`{func}(...)` (code built at run time)")
        elif func == "__import__" and not (node.args and isinstance(node.args[0], ast.Constant)):
            self.flag(node, "`__import__` with a name built at run time")
        elif func == "vars" and node.args and self.rooted_at_torch(node.args[0]):
            self.flag(node, f"`{_snippet(node)}` (torch's attributes looked up by a run-time name)")
        elif (func in NAME_FROM_STRING and len(node.args) >= 2
              and not isinstance(node.args[1], ast.Constant) and self.rooted_at_torch(node.args[0])):
            built = self.fold(node.args[1])
            name = f" (it builds {built!r})" if built else ""
            self.flag(node, f"`{_snippet(node)}`: an attribute of torch named at run time{name}")
        elif (func in NAME_FROM_STRING | {"vars"} and node.args and isinstance(node.args[0], ast.Name)
              and node.args[0].id in INTERPRETER_MODULES):
            self.flag(node, f"`{_snippet(node)}`")
        elif (func in NAME_FROM_STRING and len(node.args) >= 2
              and not isinstance(node.args[1], ast.Constant)):
            built = self.fold(node.args[1])
            if built and (built in REFLECTIVE_ATTRIBUTES or built.startswith("__")):
                self.flag(node, f"`{_snippet(node)}` (it builds {built!r})")
        self.generic_visit(node)

    def rooted_at_torch(self, node: ast.AST) -> bool:
        return _rooted_at(node, self.torch_names)

    def fold(self, node: ast.AST, depth: int = 0) -> str | None:
        """The string an expression of constants builds, when it can be told."""
        if depth > 8:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.fold(node.left, depth + 1), self.fold(node.right, depth + 1)
            return left + right if left is not None and right is not None else None
        if isinstance(node, ast.JoinedStr):
            parts = [self.fold(v.value if isinstance(v, ast.FormattedValue) else v, depth + 1)
                     for v in node.values]
            return "".join(parts) if all(p is not None for p in parts) else None
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "join" and len(node.args) == 1
                and isinstance(node.args[0], (ast.List, ast.Tuple))):
            sep = self.fold(node.func.value, depth + 1)
            parts = [self.fold(e, depth + 1) for e in node.args[0].elts]
            if sep is not None and all(p is not None for p in parts):
                return sep.join(parts)
            return None
        if isinstance(node, ast.Name) and len(self.assigned.get(node.id, ())) == 1:
            return self.fold(self.assigned[node.id][0], depth + 1)
        return None


def _torch_aliases(tree: ast.AST) -> set[str]:
    """Names bound to torch or a part of it (`import torch.nn as nn`,
    `from torch.nn import functional as F`, `ops = torch.ops`)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "torch":
                    names.add(alias.asname or "torch")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "torch":
            names.update(alias.asname or alias.name for alias in node.names if alias.name != "*")
    for _ in range(3):  # one name assigned from another, a few levels deep
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name):
                if _rooted_at(node.value, names):
                    names.add(node.targets[0].id)
    return names


def _rooted_at(node: ast.AST, names: set[str]) -> bool:
    """Whether an expression starts from one of `names` (`F.softmax(x).sum`,
    `getattr(torch.ops, name)`, `torch.nn.modules[0]`)."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in NAME_FROM_STRING | {"vars"} and node.args):
            node = node.args[0]
        else:
            node = node.func if isinstance(node, ast.Call) else node.value
    return isinstance(node, ast.Name) and node.id in names


def _snippet(node: ast.AST, limit: int = 60) -> str:
    text = ast.unparse(node)
    return text if len(text) <= limit else text[:limit - 3] + "..."


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
    """A notebook as the one module the contract makes of it (see
    grader/notebook_files.py)."""
    module = notebook_module(path)
    source_file = SourceFile(path.stem, module.text, str(path), kind="ipynb", cells=module.cells,
                             heads=module.heads)
    if not module.text.strip():
        source_file.problem = (f"{path.name} holds no code" + (
            "" if module.code_cells else " (it has no code cells)") + ": write your solution in "
            "its code cells (cells tagged `skip` are left out)")
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


DEFAULT_FOLDER = "exercises"


def holds_exercise_files(folder: Path) -> bool:
    """Whether `folder` itself holds a file named after an exercise (.py or notebook)."""
    try:
        return folder.is_dir() and any(
            child.suffix in (".py", ".ipynb") and module_for_name(child.stem) is not None
            for child in folder.iterdir())
    except OSError:
        return False


def resolve_path(path: str | Path) -> Path:
    """The submission the student means.  The default `exercises` run from
    inside `exercises/` (no `exercises/exercises`) is the current folder."""
    root = Path(path).expanduser()
    if not root.exists() and Path(path) == Path(DEFAULT_FOLDER) and holds_exercise_files(Path.cwd()):
        return Path(".")
    if not root.exists():
        raise GraderError(f"submission not found: {root}",
                          hint="pass --submission PATH (a folder of exercise files or a notebook)")
    return root


def no_exercise_files(root: Path) -> GraderError:
    """A folder with no exercise file: which folder the student probably meant."""
    names = ", ".join(e.file for e in registry.EXERCISES[:2])
    candidates = [root / DEFAULT_FOLDER, root / "notebooks", root / DEFAULT_FOLDER / "notebooks"]
    try:
        candidates += sorted(c for c in root.iterdir() if c.is_dir() and c not in candidates)
    except OSError:
        pass
    meant = next((c for c in candidates if holds_exercise_files(c)), None)
    if meant is None and not (root / DEFAULT_FOLDER).exists():
        meant = root / DEFAULT_FOLDER
    where = f" (did you mean {meant}?)" if meant is not None else ""
    return GraderError(f"no exercise files in {root}{where}",
                       hint=f"the submission folder holds the exercise files themselves ({names}, ... "
                            "or their notebooks)")


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
