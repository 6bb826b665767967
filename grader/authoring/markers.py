"""Solution markers: the one place that knows how a solution becomes a stub.

In `solutions/*.py`:

    def f(x):
        \"\"\"Docstring (kept).\"\"\"
        # BEGIN SOLUTION
        ...the reference code...
        # END SOLUTION

    y = compute(x)  # SOLUTION          (one-line form)

become, in the student's stub,

        # TODO: Implement for Exercise N.
        raise NotImplementedError("Exercise N: f")
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
ONE_LINE = re.compile(r"\s#\s*SOLUTION\s*$")
TODO = "# TODO: Implement for Exercise {number}."
RAISE = 'raise NotImplementedError("Exercise {number}: {name}")'


class MarkerError(ValueError):
    """A malformed marker, with the file and line to fix."""

    def __init__(self, path: str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line = path, line


@dataclass
class Region:
    first: int   # 1-based line numbers, inclusive
    last: int
    indent: str


def _enclosing_names(text: str) -> dict[int, str]:
    """Line number -> qualified name of the innermost function around it."""
    names: dict[int, str] = {}
    tree = ast.parse(text)

    def visit(node, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    for line in range(child.lineno, (child.end_lineno or child.lineno) + 1):
                        names[line] = name
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return names


def regions(text: str, path: str = "<solution>") -> list[Region]:
    found: list[Region] = []
    open_at: int | None = None
    indent = ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if open_at is not None:
                raise MarkerError(path, number, f"nested {BEGIN} (the one at line {open_at} is still open)")
            open_at, indent = number, line[: len(line) - len(line.lstrip())]
        elif stripped == END:
            if open_at is None:
                raise MarkerError(path, number, f"{END} without a {BEGIN}")
            found.append(Region(open_at, number, indent))
            open_at = None
        elif ONE_LINE.search(line) and not stripped.startswith("#"):
            if open_at is not None:
                raise MarkerError(path, number, f"one-line # SOLUTION inside the block opened at line {open_at}")
            found.append(Region(number, number, line[: len(line) - len(line.lstrip())]))
        elif stripped.startswith("# BEGIN") or stripped.startswith("# END"):
            raise MarkerError(path, number, f"unknown marker {stripped!r} (use {BEGIN!r} / {END!r})")
    if open_at is not None:
        raise MarkerError(path, open_at, f"{BEGIN} is never closed")
    return found


def make_stub(text: str, number: int, path: str = "<solution>") -> str:
    """The student's stub for exercise `number`, from its solution's text."""
    try:
        names = _enclosing_names(text)
    except SyntaxError as exc:
        raise MarkerError(path, exc.lineno or 0, f"the solution does not parse: {exc.msg}") from None
    lines = text.splitlines()
    out: list[str] = []
    cursor = 1
    for region in regions(text, path):
        out.extend(lines[cursor - 1: region.first - 1])
        name = names.get(region.first)
        if name is None:
            raise MarkerError(path, region.first, "solution marker outside any function")
        out.append(region.indent + TODO.format(number=number))
        out.append(region.indent + RAISE.format(number=number, name=name))
        cursor = region.last + 1
    out.extend(lines[cursor - 1:])
    return "\n".join(out) + "\n"
