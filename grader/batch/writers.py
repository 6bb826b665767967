"""The gradebook's own files: a CSV (points per exercise, one row per student)
and a JSON with every student's Report; and reading either back (merge, diff,
render)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from grader import registry
from grader.batch.cache import atomic_write
from grader.batch.gradebook import Gradebook, Row, RowStatus
from grader.errors import GraderError

GRADEBOOK_FORMATS = ("auto", "csv", "json", "both")
CSV_TAIL = ["total", "max_total", "status", "note", "hash", "flags"]
HASH_CHARS = 12            # the CSV shows a prefix of the snapshot hash


def csv_text(book: Gradebook) -> str:
    columns = [registry.get(n).module for n in book.exercises]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", *columns, *CSV_TAIL])
    for row in book.sorted_rows():
        cells = []
        for number in book.exercises:
            value = row.points.get(number)
            cells.append("" if value is None or row.status.needs_attention else f"{value:.2f}")
        total = row.total
        writer.writerow([row.student, *cells, "" if total is None else f"{total:.2f}",
                         f"{row.max_total:.2f}", row.status.value, row.note,
                         row.snapshot_hash[:HASH_CHARS], "; ".join(row.flags)])
    return out.getvalue()


def json_text(book: Gradebook) -> str:
    return json.dumps(book.to_dict(), indent=1, sort_keys=True) + "\n"


def write_gradebook(book: Gradebook, output: Path, fmt: str = "auto") -> list[Path]:
    """Write CSV and/or JSON; `auto`: by suffix, and a .csv gets its .json beside it."""
    if fmt == "auto":
        fmt = "json" if output.suffix == ".json" else "both"
    if fmt not in GRADEBOOK_FORMATS:
        raise ValueError(f"unknown gradebook format {fmt!r}")
    output.parent.mkdir(parents=True, exist_ok=True)
    written = []
    if fmt in ("csv", "both"):
        atomic_write(output, csv_text(book))
        written.append(output)
    if fmt in ("json", "both"):
        target = output if fmt == "json" else output.with_suffix(".json")
        atomic_write(target, json_text(book))
        written.append(target)
    return written


def read_gradebook(path: Path) -> Gradebook:
    """A gradebook JSON, or a CSV written by `batch` (points only, no reports)."""
    if not path.is_file():
        raise GraderError(f"no results file at {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GraderError(f"cannot read {path} ({exc})") from None
    if path.suffix == ".json":
        try:
            return Gradebook.from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise GraderError(f"{path} is not an attn-grade gradebook JSON ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    numbers = [registry.get(c).number for c in header if registry.by_module(c) is not None]
    if "student" not in header or not numbers:
        raise GraderError(f"{path} is not a gradebook CSV written by attn-grade batch")
    rows = []
    try:
        for record in reader:
            points = {registry.get(c).number: float(record[c]) for c in header
                      if registry.by_module(c) is not None and record.get(c) not in (None, "")}
            flags = [f.strip() for f in (record.get("flags") or "").split(";") if f.strip()]
            rows.append(Row(student=record["student"], submission="",
                            status=RowStatus(record.get("status") or "graded"), points=points,
                            max_total=float(record.get("max_total") or 0.0),
                            note=record.get("note", ""), snapshot_hash=record.get("hash", ""),
                            flags=flags))
    except ValueError as exc:
        raise GraderError(f"{path} line {reader.line_num}: {exc}") from None
    return Gradebook(exercises=numbers, rows=rows, seed=0, fingerprint="", grader_version="")
