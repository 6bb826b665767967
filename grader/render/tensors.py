"""Small tensors of a counterexample, ready to draw (by rich.py and markdown.py).

A counterexample (grader/counterexample.py) holds each tensor as
{"shape", "dtype", "values"}.  Here a tensor becomes a 2-D grid of cells:
numbers with 4 significant digits, a bool mask as ■ (masked, True) and ·,
anything over MAX_ELEMENTS elements as its shape plus a slice (the first
index of each leading dimension, the top-left corner of the rest).  Got and
expected are compared cell by cell with the test's tolerance, so the
entries that differ can be highlighted; attention weights (values in
[0, 1]) also get a shade for a heatmap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MAX_ELEMENTS = 64
MAX_PARAMETER_ELEMENTS = 4      # module weights bigger than this: shape only (unless details)
HIDDEN = "(values: in the repro, or with details)"
MAX_ROWS = 8
MAX_COLS = 8
SHADES = " ░▒▓█"


@dataclass
class Grid:
    name: str
    shape: tuple[int, ...]
    dtype: str
    rows: list[list[str]] = field(default_factory=list)     # cell texts
    numbers: list[list[float | None]] = field(default_factory=list)
    where: str = ""              # e.g. "[0, :, :]" when a slice of a bigger tensor is shown
    masked: list[list[bool]] = field(default_factory=list)  # weights: cells a mask input hides
    cut: bool = False            # rows or columns left out
    scalar: str = ""             # a plain (non-tensor) input: its value

    @property
    def is_mask(self) -> bool:
        return self.dtype == "bool"

    @property
    def shape_text(self) -> str:
        return "(" + ", ".join(map(str, self.shape)) + ("," if len(self.shape) == 1 else "") + ")"

    @property
    def header(self) -> str:
        if self.scalar:
            return f"{self.name} = {self.scalar}"
        part = f" {self.where}" if self.where else ""
        sliced = self.cut or (self.where.startswith("[") if self.where else False)
        return f"{self.name} {self.shape_text} {self.dtype}{part}" + (" (a slice)" if sliced else "")

    def width(self) -> int:
        """Characters of its widest row."""
        cell = max((len(c) for row in self.rows for c in row), default=0)
        return max(len(self.header), max((len(r) for r in self.rows), default=0) * (cell + 3) + 2)


def number(x) -> str:
    if isinstance(x, str):          # "nan", "inf", "-inf"; anything else is not a number
        return x if x in ("nan", "inf", "-inf") else "?"
    if isinstance(x, bool):
        return "■" if x else "·"
    if isinstance(x, int):
        return str(x)
    if x == 0:
        return "0"
    return f"{x:.4g}"


def _as_float(x) -> float | None:
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str):
        return float(x) if x in ("nan", "inf", "-inf") else None
    return None


def _to_2d(values, shape: tuple[int, ...]) -> tuple[list, str]:
    """The 2-D part to draw, and which slice it is ("" when the whole)."""
    if len(shape) == 0:
        return [[values]], ""
    if len(shape) == 1:
        return [values], ""
    lead = []
    sliced = False
    while len(shape) > 2:
        sliced = sliced or shape[0] > 1
        values = values[0] if values else []
        shape = shape[1:]
        lead.append("0")
    where = "[" + ", ".join(lead + [":", ":"]) + "]" if lead and sliced else ""
    return values, where


def grid(name: str, value, *, details: bool = False) -> Grid:
    """A counterexample value (encoded tensor, or a plain input) as a Grid."""
    if not (isinstance(value, dict) and {"shape", "dtype", "values"} <= set(value)):
        return Grid(name, (), "", scalar=str(value))
    shape = tuple(value["shape"])
    out = Grid(name, shape, value["dtype"])
    if value["values"] is None:
        out.where = "(values not kept)"
        return out
    numel = math.prod(shape) if shape else 1
    rows2d, out.where = _to_2d(value["values"], shape)
    limit_r, limit_c = (None, None) if details and numel <= MAX_ELEMENTS else (MAX_ROWS, MAX_COLS)
    if limit_r is not None and (len(rows2d) > limit_r or any(len(r) > limit_c for r in rows2d)):
        out.cut = True
        rows2d = [r[:limit_c] for r in rows2d[:limit_r]]
    out.rows = [[number(x) for x in row] for row in rows2d]
    out.numbers = [[_as_float(x) for x in row] for row in rows2d]
    return out


def differs(got: Grid, expected: Grid, tolerance: dict) -> list[list[bool]]:
    """Which cells of `got` are wrong (same layout as got.rows)."""
    atol, rtol = float(tolerance.get("atol", 0.0)), float(tolerance.get("rtol", 0.0))
    out = []
    for r, row in enumerate(got.numbers):
        flags = []
        for c, g in enumerate(row):
            try:
                e = expected.numbers[r][c]
            except IndexError:
                flags.append(True)
                continue
            if g is None or e is None:
                flags.append(g != e)
            elif math.isnan(g) or math.isnan(e):
                flags.append(not (math.isnan(g) and math.isnan(e)))
            else:
                flags.append(abs(g - e) > atol + rtol * abs(e))
        out.append(flags)
    return out


def is_weights(name: str, g: Grid) -> bool:
    # (`name` is what was compared: "weights", "weights with one head"...)
    """Attention weights: probabilities, drawn as a heatmap."""
    values = [x for row in g.numbers for x in row if x is not None and not math.isnan(x)]
    return ("weight" in name.lower() and not g.is_mask and bool(values)
            and all(-1e-6 <= x <= 1 + 1e-6 for x in values))


def shade(x: float | None) -> str:
    if x is None or math.isnan(x):
        return "?"
    x = min(max(x, 0.0), 1.0)
    return SHADES[min(int(x * len(SHADES)), len(SHADES) - 1)]


def masked_cells(weights: Grid, masks: list[Grid]) -> list[list[bool]]:
    """Which cells of a weights grid a bool mask input hides (True = not
    allowed), broadcasting a (1, Lk) mask row over the queries; [] if none fits."""
    rows, cols = len(weights.rows), max((len(r) for r in weights.rows), default=0)
    for mask in masks:
        if not mask.rows or len(mask.rows[0]) < cols:
            continue
        if len(mask.rows) == 1 or len(mask.rows) >= rows:
            return [[mask.rows[min(r, len(mask.rows) - 1)][c] == "■" for c in range(len(weights.rows[r]))]
                    for r in range(rows)]
    return []


@dataclass
class Shown:
    """A counterexample, as grids."""

    inputs: list[Grid]
    pairs: list[tuple[str, Grid, Grid, list[list[bool]]]]   # (what, got, expected, wrong cells)
    call: str = ""


def shown(counterexample: dict | None, *, details: bool = False) -> Shown | None:
    if not counterexample:
        return None
    inputs = []
    seen: dict[str, str] = {}
    for name, value in counterexample.get("inputs", {}).items():
        key = repr(value) if isinstance(value, dict) and value.get("values") is not None else ""
        if key and key in seen:               # self-attention: key and value ARE the query
            inputs.append(Grid(name, (), "", scalar=seen[key]))
            continue
        if key:
            seen[key] = name
        g = grid(name, value, details=details)
        if not details and "." in name and math.prod(g.shape or (1,)) > MAX_PARAMETER_ELEMENTS:
            g.rows, g.numbers, g.where = [], [], HIDDEN
            last = inputs[-1] if inputs else None
            if last is not None and last.where == HIDDEN and (last.shape, last.dtype) == (g.shape, g.dtype):
                last.name += f", {name}"          # W_q.weight, W_k.weight, ...: one line
                continue
        inputs.append(g)
    tolerance = counterexample.get("tolerance", {})
    masks = [grid(name, value, details=details) for name, value in counterexample.get("inputs", {}).items()
             if isinstance(value, dict) and value.get("dtype") == "bool" and value.get("values") is not None]
    pairs = []
    for name, value in counterexample.get("got", {}).items():
        got = grid("got", value, details=details)
        expected = grid("expected", counterexample.get("expected", {}).get(name), details=details)
        if is_weights(name, expected):
            for g in (got, expected):
                g.masked = masked_cells(g, masks)
        pairs.append((name, got, expected, differs(got, expected, tolerance)))
    return Shown(inputs, pairs, counterexample.get("call", ""))


def text_lines(counterexample: dict | None, *, details: bool = False) -> list[str]:
    """The failing case as plain text (JUnit, Gradescope): inputs, then got
    and expected; wrong entries marked with *."""
    case = shown(counterexample, details=details)
    if case is None:
        return []
    lines = ["the failing case:" + (f" {case.call}" if case.call else "")]

    def block(g: Grid, wrong=None) -> None:
        lines.append(g.header)
        if not g.rows:
            return
        width = max(len(c) for row in g.rows for c in row)
        for r, row in enumerate(g.rows):
            lines.append("  " + " ".join(
                c.rjust(width) + ("*" if wrong and r < len(wrong) and c_i < len(wrong[r]) and wrong[r][c_i] else " ")
                for c_i, c in enumerate(row)).rstrip())
        if g.cut:
            lines.append("  …")

    for g in case.inputs:
        block(g)
    for what, got, expected, wrong in case.pairs:
        lines.append(f"{what}:")
        block(got, wrong)
        block(expected)
    if any(any(any(row) for row in wrong) for *_, wrong in case.pairs):
        lines.append("(* differs from the expected value beyond the tolerance)")
    return lines
