"""`from grader import check; check(3)` inside a running Jupyter or Colab kernel.

Grades the code the student has RUN in this kernel for exercise 3, as
source text taken from the kernel's input history (never the live objects,
which the judge must not touch), through the same isolated worker as
`attn-grade exercise 3`:

1. The history (`get_ipython().history_manager.input_hist_raw`, the cells in
   the order they ran, re-runs included) is read cell by cell, with the
   notebook rules of the contract (`!` and `%` lines left out).  A cell that
   does not parse never ran in the kernel either: it is left out, and said so.
2. Of those cells, the module keeps what the exercise's API needs: the last
   definition of each contract name (`Attention`...), and, transitively,
   every import, function, class or top-level value these use.  Statements
   that nothing needs -- experiments, prints, a `check(3)` -- ran in the
   kernel already and are left out, so a test cell run before the code was
   written cannot break the import.  Later definitions win, as in the kernel.
3. That module is written to a temporary submission folder as
   `ex03_cross_attention.py`, with the other exercise files it imports as
   the kernel finds them (its `sys.path`, then `.ipynb` files next to the
   notebook or one folder up).
4. A separate judge process (`python -m grader.cli exercise 3 ... --format
   json`) grades it; the scorecard is shown inline, and locations read
   `In [7], line 3` as in the notebook.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import symtable
import sys
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path

from grader import registry
from grader.notebook_files import code_lines, is_grader_statement
from grader.registry import CONTRACT_NAMES
from grader.render.points import score_text
from grader.results import Report, report_from_dict


# ------------------------------------------------------------------ history
@dataclass
class Statement:
    cell: int                 # execution count: In [cell]
    line: int                 # first line of the statement within its cell
    text: str
    binds: set[str]
    loads: set[str]
    is_def: bool = False      # def / class: only its last version counts
    star: bool = False        # `from m import *`
    imports: set[str] = field(default_factory=set)   # top-level modules it imports


@dataclass
class Assembled:
    """The module built from a kernel's history for one exercise."""

    text: str
    cells: list[int] = field(default_factory=list)          # In [n] that contributed
    segments: list[tuple[int, int, int]] = field(default_factory=list)  # (module line, cell, cell line)
    skipped: list[str] = field(default_factory=list)          # notes: cells left out, and why
    defines: list[str] = field(default_factory=list)          # contract names found

    def locate(self, line: int) -> str:
        where = None
        for first, cell, cell_line in self.segments:
            if first <= line:
                where = (cell, cell_line + line - first)
        if where is None:
            return f"line {line}"
        return f"In [{where[0]}], line {where[1]}"


def _binds(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.Import):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    if isinstance(node, ast.ImportFrom):
        return {a.asname or a.name for a in node.names if a.name != "*"}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    names: set[str] = set()

    def visit(n: ast.AST) -> None:
        for child in ast.iter_child_nodes(n):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(child.name)          # a def inside `if`/`try`: its body is its own scope
                continue
            if isinstance(child, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
                                  ast.GeneratorExp)):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                names.update(_binds(child))
            elif isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Store, ast.Del)):
                names.add(child.id)
            elif isinstance(child, (ast.Attribute, ast.Subscript)) and isinstance(child.ctx, ast.Store):
                root = child                    # `SelfAttention.forward = f` changes SelfAttention
                while isinstance(root, (ast.Attribute, ast.Subscript)):
                    root = root.value
                if isinstance(root, ast.Name):
                    names.add(root.id)
            visit(child)

    visit(node)
    return names


def _imported_modules(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name.split(".")[0] for a in node.names}
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return {node.module.split(".")[0]}
    return set()


def _loads(node: ast.stmt) -> set[str]:
    """The global names a statement reads (a function's own locals are not
    globals: `symtable` tells them apart); every loaded name as a fallback."""
    try:
        table = symtable.symtable(ast.unparse(node), "<cell>", "exec")
    except (SyntaxError, ValueError, TypeError):
        return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    names: set[str] = set()

    def visit(t: symtable.SymbolTable, top: bool) -> None:
        for sym in t.get_symbols():
            if sym.is_referenced() and (top or sym.is_global() or
                                        (t.get_type() == "class" and not sym.is_assigned()
                                         and not sym.is_free())):
                names.add(sym.get_name())
        for child in t.get_children():
            visit(child, False)

    visit(table, True)
    return names


def parse_cell(number: int, raw: str) -> tuple[list[Statement], str]:
    """A history cell's statements ([] and a note when it does not parse)."""

    lines = code_lines(raw)
    if lines is None:
        return [], ""
    text = "\n".join(lines)
    if not text.strip():
        return [], ""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        return [], (f"In [{number}] was left out: it has a syntax error (line {exc.lineno}: "
                    f"{exc.msg}), so it did not run in the kernel either")
    statements: list[Statement] = []
    body = tree.body
    for index, node in enumerate(body):
        if is_grader_statement(node):
            continue
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        last = node.end_lineno or node.lineno
        shares = (index > 0 and (body[index - 1].end_lineno or 0) >= first) or (
            index + 1 < len(body) and body[index + 1].lineno <= last)
        if not shares:   # keep a block's trailing indented comments (`# END SOLUTION`)
            while last < len(lines) and lines[last][:1].isspace() and lines[last].strip().startswith("#"):
                last += 1
        segment = ast.unparse(node) if shares else "\n".join(lines[first - 1:last]).rstrip()
        statements.append(Statement(
            cell=number, line=first, text=segment, binds=_binds(node), loads=_loads(node),
            is_def=isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)),
            star=isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names),
            imports=_imported_modules(node)))
    return statements, ""


def module_from_history(cells: list[tuple[int, str]], module: str) -> Assembled:
    """The module for exercise `module` from history cells [(In number, source)]."""

    wanted = set(CONTRACT_NAMES.get(module, ()))
    statements: list[Statement] = []
    skipped: list[str] = []
    for number, raw in cells:
        found, note = parse_cell(number, raw)
        # `from ex02_masks import ...` run in the kernel is no part of ex02_masks itself
        statements.extend(st for st in found if module not in st.imports)
        if note:
            skipped.append(note)
    last_def: dict[str, int] = {}
    for index, st in enumerate(statements):
        if st.is_def:
            for name in st.binds:
                last_def[name] = index
    eligible = [i for i, st in enumerate(statements)
                if not st.is_def or any(last_def.get(n) == i for n in st.binds)]
    keep: set[int] = set()
    needed: set[str] = set()
    for i in eligible:
        st = statements[i]
        if st.star or st.binds & wanted:
            keep.add(i)
            needed |= st.loads
    changed = True
    while changed:
        changed = False
        for i in eligible:
            if i not in keep and statements[i].binds & needed:
                keep.add(i)
                needed |= statements[i].loads
                changed = True
    out: list[str] = [f"# {module}: built by check() from this kernel's history"]
    segments: list[tuple[int, int, int]] = []
    used_cells: list[int] = []
    current = None
    for i in sorted(keep):
        st = statements[i]
        if st.cell != current:
            current = st.cell
            used_cells.append(st.cell)
            out += ["", f"# In [{st.cell}]"]
        segments.append((len(out) + 1, st.cell, st.line))
        out.extend(st.text.split("\n"))
    defines = sorted(n for n in wanted if any(n in statements[i].binds for i in keep))
    return Assembled("\n".join(out) + "\n", used_cells, segments, skipped, defines)


def kernel_history(shell) -> list[tuple[int, str]]:
    """[(In number, raw source)] of the cells run in this kernel, in order."""
    raw = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
    if raw is None:
        raw = shell.user_ns.get("In", [])
    return [(number, text) for number, text in enumerate(raw) if number and text and text.strip()]


# ------------------------------------------------------------------ staging
def _find_exercise_file(module: str, folders: list[Path]) -> Path | None:
    """Where the kernel would import `module` from: its sys.path (a module it
    already imported included), else a notebook of that name nearby."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin and spec.origin.endswith(".py") and os.path.isfile(spec.origin):
        return Path(spec.origin)
    for folder in folders:
        for name in (f"{module}.py", f"{module}.ipynb"):
            if (folder / name).is_file():
                return folder / name
    return None


def stage(assembled: Assembled, module: str, dest: Path, folders: list[Path],
          history: list[tuple[int, str]] | None = None) -> list[str]:
    """Write the submission folder; returns notes about where the other
    exercise modules it imports came from (or that they are missing).  A
    module found nowhere but defined by cells of this kernel (one notebook
    for several exercises, Colab) is built from the history too."""
    from grader.submission import Submission

    dest.mkdir(parents=True, exist_ok=True)
    (dest / f"{module}.py").write_text(assembled.text, encoding="utf-8")
    notes: list[str] = []
    done = {module}
    while True:
        submission = Submission.from_path(dest)
        missing = sorted({dep for m in submission.files for dep in submission.sibling_imports(m)}
                         - set(submission.files) - done)
        if not missing:
            return notes
        for dep in missing:
            done.add(dep)
            path = _find_exercise_file(dep, folders)
            if path is None and history:
                built = module_from_history(history, dep)
                if built.defines:
                    (dest / f"{dep}.py").write_text(built.text, encoding="utf-8")
                    notes.append(f"{dep} was built from this kernel's cells "
                                 f"({', '.join(f'In [{n}]' for n in built.cells)}): no {dep}.py found")
                    continue
            if path is None:
                notes.append(f"{module} imports {dep}, but no {dep}.py or {dep}.ipynb was found "
                             f"(looked on sys.path and in {', '.join(map(str, folders))}): put "
                             f"your exercise {registry.by_module(dep).number} file next to this notebook")
                continue
            shutil.copy(path, dest / path.name)


# ------------------------------------------------------------------ grading
class CheckReport(Report):
    """The Report of a check(), echoed as one line (the scorecard is already shown)."""

    def __repr__(self) -> str:
        parts = [f"exercise {e.number}: {score_text(e.points, e.max_points)} ({e.status.value})"
                 for e in self.exercises]
        return f"<attn-grade check: {'; '.join(parts) or 'nothing graded'}>"

    def repro(self, test: str) -> str:
        """The code that rebuilds property `test`'s failure, for a new cell of
        this notebook: the failing tensors as literals, calling the function
        or class defined in this kernel (the import of the exercise file is
        left out)."""
        from grader.repro import find_test

        for exercise in self.exercises:
            found = find_test(exercise.tests, test)
            if not found.repro:
                return f"# no repro for {found.name}: it is {found.status.value}"
            lines = [line for line in found.repro.splitlines()
                     if not line.startswith(f"from {registry.get(exercise.number).module} import")
                     and not line.startswith(("# Run it in your submission folder", "# AssertionError",
                                              "sys.path.insert(0, os.getcwd())"))]
            lines.insert(1, "# Run this cell after the cells that define your code: it raises "
                            "AssertionError until the property holds.")
            return "\n".join(lines) + "\n"
        return "# nothing graded"


_CLI_CALL = re.compile(r"\battn-grade exercise (\d+)(?: --seed (\d+))?")


def notebook_wording(report: Report) -> None:
    """Say what to run next as notebook calls: `attn-grade exercise 2` in a
    note or message becomes `check(2)` (with its seed, `check(2, seed=N)`)."""
    def swap(match: re.Match) -> str:
        seed = f", seed={match.group(2)}" if match.group(2) else ""
        return f"check({match.group(1)}{seed})"

    for exercise in report.exercises:
        exercise.notes = [_CLI_CALL.sub(swap, note) for note in exercise.notes]
        for test in exercise.tests:
            test.message = _CLI_CALL.sub(swap, test.message)
            test.hint = _CLI_CALL.sub(swap, test.hint)


def _relabel(report: Report, assembled: Assembled, module: str) -> None:
    # `File "ex03_cross_attention.py", line 12` (tracebacks) and
    # `/tmp/.../ex03_cross_attention.py, line 12` (static checks) -> `In [7], line 3`
    pattern = re.compile(rf'(?:File )?"?(?:[^\s"(]*[/\\])?{re.escape(module)}\.py"?, line (\d+)')

    def swap(match: re.Match) -> str:
        return assembled.locate(int(match.group(1)))

    for exercise in report.exercises:
        for test in exercise.tests:
            test.traceback = pattern.sub(swap, test.traceback or "")
            test.message = pattern.sub(swap, test.message or "")


def run_judge(folder: Path, number: int, *, seed: int | None, device: str, train: bool,
              max_examples: int | None, python: str = sys.executable) -> Report:
    """Grade `folder` in a separate judge process; its Report."""
    out = folder.parent / "report.json"
    command = [python, "-c", "from grader.cli import main; main()", "exercise", str(number),
               "--submission", str(folder), "--format", "json", "--output", str(out),
               "--device", device]
    if seed is not None:
        command += ["--seed", str(seed)]
    if not train:
        command.append("--no-train")
    if max_examples:
        command += ["--max-examples", str(max_examples)]
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    proc = subprocess.Popen(command, cwd=str(folder.parent), env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if not out.is_file():
        detail = (stderr or stdout).strip()[-3000:]
        raise RuntimeError(f"the grader did not produce a report (exit code {proc.returncode})"
                           + (f":\n{detail}" if detail else ""))
    return report_from_dict(json.loads(out.read_text(encoding="utf-8")))


def check(exercise, *, seed: int | None = None, device: str = "auto", train: bool = True,
          max_examples: int | None = None, show: bool = True, details: bool = False,
          shell=None) -> CheckReport | None:
    """Grade the code run in this kernel for `exercise` (3, "03", "cross-attention").

    Shows the scorecard and returns the Report (echoed as one line).
    `details=True` shows every failure in full; `.repro(test)` of the result
    is code that rebuilds one failure in a new cell."""
    exercise = registry.get(exercise)
    if shell is None and _inside_grading():
        return None     # a `check(3)` cell left untagged in a graded notebook: nothing to do
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - no IPython at all
            get_ipython = lambda: None  # noqa: E731
        shell = get_ipython()
    if shell is None:
        raise RuntimeError(f"check() grades the code run in a Jupyter or Colab notebook; in a "
                           f"terminal run: attn-grade exercise {exercise.number}")
    history = kernel_history(shell)
    assembled = module_from_history(history, exercise.module)
    say = _printer(show)
    for note in assembled.skipped:
        say(f"note: {note}", "yellow")
    if not assembled.defines:

        expected = ", ".join(CONTRACT_NAMES.get(exercise.module, ()))
        say(f"Nothing to grade yet: no cell run in this kernel defines {expected} "
            f"(exercise {exercise.number}). Run your cells, then check({exercise.number}) again.",
            "red")
        return None
    cwd = Path.cwd()
    work = Path(tempfile.mkdtemp(prefix="attn-grade-check-"))
    try:
        folder = work / "submission"
        notes = stage(assembled, exercise.module, folder, [cwd, cwd.parent], history)
        for note in notes:
            say(f"note: {note}", "yellow")
        cells = ", ".join(f"In [{n}]" for n in assembled.cells)
        say(f"Grading exercise {exercise.number} ({exercise.slug}) with the code from {cells} "
            "in an isolated process...", "dim")
        report = run_judge(folder, exercise.number, seed=seed, device=device, train=train,
                           max_examples=max_examples)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _relabel(report, assembled, exercise.module)
    notebook_wording(report)
    report.submission = f"this kernel (cells {', '.join(map(str, assembled.cells))})"
    result = CheckReport(**{f.name: getattr(report, f.name) for f in fields(Report)})
    if show:
        from grader.render.options import RenderOptions
        from grader.render.rich import print_report

        print_report(result, options=RenderOptions(details=details, notebook=True))
        _show_training_curves(result)
    return result


def _show_training_curves(report: Report) -> None:
    """Exercise 8: the accuracy and loss curves inline, as SVG."""
    from grader.render.svg import training_svg

    picture = training_svg(report)
    if not picture:
        return
    try:
        from IPython.display import SVG, display

        display(SVG(picture))
    except Exception:  # noqa: BLE001 - never let display break a check
        pass


def _inside_grading() -> bool:
    """True in a grader worker, which runs a notebook's cells as a module."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", "") in ("grader.sandbox.worker", "grader.sandbox.zygote")


def _printer(show: bool):
    def say(text: str, style: str = "") -> None:
        if not show:
            return
        try:
            from rich.console import Console

            Console().print(text, style=style or None, markup=False, highlight=False)
        except Exception:  # noqa: BLE001 - never let display break a check
            print(text)
    return say
