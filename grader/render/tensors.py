"""Small tensors of a counterexample, ready to draw (by rich.py and markdown.py).

A counterexample (grader/counterexample.py) holds each tensor as
{"shape", "dtype", "values"}.  Here a tensor becomes a 2-D grid of cells:
numbers with 4 significant digits, a bool mask as ■ (masked, True) and ·,
anything over MAX_ELEMENTS elements as its shape plus a slice (the matrix
of the leading index where got is furthest from expected, the same for every
tensor of the case with those leading dimensions; else index 0; then the
top-left corner).  Got and expected are compared cell by cell with the
test's tolerance, so the entries that differ can be highlighted; attention
weights (values in [0, 1]) also get a shade for a heatmap, and the cells a
mask input hides are marked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MAX_ELEMENTS = 64
MAX_PARAMETER_ELEMENTS = 4      # module weights bigger than this: shape only (unless details)
HIDDEN = "(values: in the repro, or with details)"
MAX_WEIGHT_LINES = 4            # more module weights than this without values: one line
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
    note: str = ""               # a line about several tensors (no shape of its own)
    origin: tuple[int, int] = (0, 0)   # the first row and column drawn (a window of a bigger one)

    @property
    def is_mask(self) -> bool:
        return self.dtype == "bool"

    @property
    def shape_text(self) -> str:
        return "(" + ", ".join(map(str, self.shape)) + ("," if len(self.shape) == 1 else "") + ")"

    @property
    def header(self) -> str:
        if self.note:
            return f"{self.name} {self.note}"
        if self.scalar:
            return f"{self.name} = {self.scalar}"
        part = f" {self.where}" if self.where else ""   # "[1, :, :]" already says which slice
        sliced = self.cut and not self.where.startswith("[")
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


# Where got is furthest from expected: (shape of the compared tensor, the
# full index of its worst entry).  Every tensor of the case with the same
# leading dimensions is drawn at the same leading index, and one of the
# same shape also around the same row and column.
At = tuple[tuple[int, ...], tuple[int, ...]]


def _lead(shape: tuple[int, ...], at: At | None) -> tuple[int, ...]:
    if at is not None and len(shape) > 2 and at[0][:-2] == shape[:-2]:
        return at[1][:-2]
    return (0,) * max(len(shape) - 2, 0)


def _window_start(worst: int, size: int, limit: int) -> int:
    """The first row (column) of a `limit`-long window of `size` showing `worst`."""
    if size <= limit or worst < limit:
        return 0
    return min(worst - limit // 2, size - limit)


def grid(name: str, value, *, details: bool = False, at: At | None = None) -> Grid:
    """A counterexample value (encoded tensor, or a plain input) as a Grid."""
    if not (isinstance(value, dict) and {"shape", "dtype", "values"} <= set(value)):
        return Grid(name, (), "", scalar=str(value))
    shape = tuple(value["shape"])
    out = Grid(name, shape, value["dtype"])
    if value["values"] is None:
        out.where = "(values not kept)"
        return out
    numel = math.prod(shape) if shape else 1
    values = value["values"]
    lead = _lead(shape, at)
    for i in lead:
        values = values[i] if values else []
    rows2d = [[values]] if not shape else ([values] if len(shape) == 1 else values)
    n_rows, n_cols = len(rows2d), max((len(r) for r in rows2d), default=0)
    limit_r, limit_c = (None, None) if details and numel <= MAX_ELEMENTS else (MAX_ROWS, MAX_COLS)
    r0 = c0 = 0
    if limit_r is not None and (n_rows > limit_r or n_cols > limit_c):
        out.cut = True
        if at is not None and at[0] == shape:
            r0 = _window_start(at[1][-2], n_rows, limit_r) if len(shape) >= 2 else 0
            c0 = _window_start(at[1][-1], n_cols, limit_c)
        rows2d = [r[c0:c0 + limit_c] for r in rows2d[r0:r0 + limit_r]]
    out.origin = (r0, c0)
    parts = [str(i) for i in lead]
    if r0 or c0:
        if len(shape) >= 2:
            parts.append(f"{r0}:{r0 + len(rows2d)}")
        parts.append(f"{c0}:{c0 + max((len(r) for r in rows2d), default=0)}")
    elif any(n > 1 for n in shape[:-2]):
        parts += [":", ":"]
    else:
        parts = []
    out.where = "[" + ", ".join(parts) + "]" if parts else ""
    out.rows = [[number(x) for x in row] for row in rows2d]
    out.numbers = [[_as_float(x) for x in row] for row in rows2d]
    return out


def _flat(values) -> list:
    if isinstance(values, list):
        return [x for v in values for x in _flat(v)]
    return [values]


def _excess(g, e, atol: float, rtol: float) -> float:
    """How far beyond the tolerance got `g` is from expected `e`."""
    g, e = _as_float(g), _as_float(e)
    if g is None or e is None:
        return 0.0 if g == e else math.inf
    if math.isnan(g) or math.isnan(e):
        return 0.0 if math.isnan(g) and math.isnan(e) else math.inf
    if math.isinf(g) or math.isinf(e):
        return 0.0 if g == e else math.inf
    return abs(g - e) - (atol + rtol * abs(e))


def worst_at(counterexample: dict) -> At | None:
    """Where got's worst entry is, in the first compared tensor that differs
    (None: nothing to follow)."""
    tolerance = counterexample.get("tolerance", {})
    atol, rtol = float(tolerance.get("atol", 0.0)), float(tolerance.get("rtol", 0.0))
    for name, got in counterexample.get("got", {}).items():
        expected = counterexample.get("expected", {}).get(name)
        if not (isinstance(got, dict) and isinstance(expected, dict)):
            continue
        shape = tuple(got.get("shape") or ())
        if (not shape or tuple(expected.get("shape") or ()) != shape
                or got.get("values") is None or expected.get("values") is None):
            continue
        excess = [_excess(g, e, atol, rtol) for g, e in zip(_flat(got["values"]), _flat(expected["values"]))]
        if not excess or max(excess) <= 0:
            continue
        flat = excess.index(max(excess))
        index = []
        for size in reversed(shape):
            flat, rest = divmod(flat, size)
            index.append(rest)
        return shape, tuple(reversed(index))
    return None


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
            flags.append(_excess(g, e, atol, rtol) > 0)
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


def masked_cells(weights: Grid, masks: dict[str, dict], at: At | None = None) -> list[list[bool]]:
    """Which cells of a weights grid the bool mask inputs hide (True = not
    allowed, as everywhere in the contract): a mask broadcast to the weights'
    shape (aligned on the right), or a key padding mask (B, Lk) on the batch
    row drawn; [] if none fits."""
    shape = weights.shape
    rows, cols = len(weights.rows), max((len(r) for r in weights.rows), default=0)
    lead, (r0, c0) = _lead(shape, at), weights.origin
    found: list[list[bool]] = []
    for name, mask in masks.items():
        mshape, values = tuple(mask["shape"]), mask["values"]
        if len(shape) < 2 or values is None:
            continue
        if ("padding" in name and len(mshape) == 2 and len(shape) >= 3
                and mshape == (shape[0], shape[-1])):
            row = values[lead[0]]
            cells = [[bool(row[c0 + c]) for c in range(cols)] for _ in range(rows)]
        elif len(mshape) <= len(shape) and all(m in (1, w) for m, w in zip(reversed(mshape), reversed(shape))):
            def at_cell(r: int, c: int, mshape=mshape, values=values) -> bool:
                index = (*lead, r0 + r, c0 + c)[len(shape) - len(mshape):]
                v = values
                for size, i in zip(mshape, index):
                    v = v[0 if size == 1 else i]
                return bool(v)
            cells = [[at_cell(r, c) for c in range(len(weights.rows[r]))] for r in range(rows)]
        else:
            continue
        found = cells if not found else [[a or b for a, b in zip(x, y)] for x, y in zip(found, cells)]
    return found


@dataclass
class Shown:
    """A counterexample, as grids."""

    inputs: list[Grid]
    pairs: list[tuple[str, Grid, Grid, list[list[bool]]]]   # (what, got, expected, wrong cells)
    call: str = ""


def _weights_line(names: list[str]) -> Grid:
    """Many module weights whose values are not drawn: one line naming the
    layers (`self_attn.W_q`, `norm1`...), not one line per tensor."""
    layers = list(dict.fromkeys(n.rsplit(".", 1)[0] for n in names))
    return Grid(f"{len(names)} weights of {', '.join(layers)}", (), "", scalar="", note=HIDDEN)


def shown(counterexample: dict | None, *, details: bool = False) -> Shown | None:
    if not counterexample:
        return None
    at = worst_at(counterexample)
    inputs = []
    seen: dict[str, str] = {}
    hidden: list[str] = []                  # module weights drawn without values
    for name, value in counterexample.get("inputs", {}).items():
        key = repr(value) if isinstance(value, dict) and value.get("values") is not None else ""
        if key and key in seen:               # self-attention: key and value ARE the query
            inputs.append(Grid(name, (), "", scalar=seen[key]))
            continue
        if key:
            seen[key] = name
        g = grid(name, value, details=details, at=at)
        if not details and "." in name and math.prod(g.shape or (1,)) > MAX_PARAMETER_ELEMENTS:
            g.rows, g.numbers, g.where = [], [], HIDDEN
            hidden.append(name)
            last = inputs[-1] if inputs else None
            if last is not None and last.where == HIDDEN and (last.shape, last.dtype) == (g.shape, g.dtype):
                last.name += f", {name}"          # W_q.weight, W_k.weight, ...: one line
                continue
        inputs.append(g)
    if len(hidden) > MAX_WEIGHT_LINES:            # a whole layer's weights: one line
        first = inputs.index(next(g for g in inputs if g.where == HIDDEN))
        inputs = [g for g in inputs if g.where != HIDDEN]
        inputs.insert(first, _weights_line(hidden))
    tolerance = counterexample.get("tolerance", {})
    masks = {name: value for name, value in counterexample.get("inputs", {}).items()
             if isinstance(value, dict) and value.get("dtype") == "bool" and value.get("values") is not None}
    pairs = []
    for name, value in counterexample.get("got", {}).items():
        got = grid("got", value, details=details, at=at)
        expected = grid("expected", counterexample.get("expected", {}).get(name), details=details, at=at)
        if is_weights(name, expected):
            for g in (got, expected):
                g.masked = masked_cells(g, masks, at)
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
