"""`merge`: one gradebook from the results of `batch --shard i/n` runs.

Duplicate flags between students of different shards are found again here,
from the code fingerprints the shards' JSON carry (CSV shards carry none:
their flags are kept as they are)."""

from __future__ import annotations

from pathlib import Path

from grader.batch import flags
from grader.batch.gradebook import Gradebook, Row
from grader.batch.writers import read_gradebook
from grader.errors import GraderError


def merge(paths: list[Path]) -> tuple[Gradebook, list[str]]:
    """One gradebook from the shards' results; (gradebook, warnings)."""
    if not paths:
        raise GraderError("nothing to merge", hint="attn-grade merge shard-1.json shard-2.json ...")
    books = [(path, read_gradebook(path)) for path in paths]
    warnings: list[str] = []
    first_path, first = books[0]
    rows: dict[str, tuple[Path, Row]] = {}
    for path, book in books:
        if book.exercises != first.exercises:
            raise GraderError(f"{path} grades exercises {book.exercises}, {first_path} grades "
                              f"{first.exercises}: they are not shards of one batch")
        for key in ("fingerprint", "seed"):
            mine, theirs = getattr(book, key), getattr(first, key)
            if mine and theirs and mine != theirs:
                warnings.append(f"{path} was graded with {key} {mine}, {first_path} with {theirs}")
        for row in book.rows:
            if row.student in rows:
                other_path, other = rows[row.student]
                if other.to_dict() != row.to_dict():
                    raise GraderError(f"student {row.student!r} is in both {other_path} and {path} "
                                      "with different results")
                continue
            rows[row.student] = (path, row)
    merged = [r for _, r in rows.values()]
    references = {n: d for _, book in books for n, d in book.references.items()}
    if any(r.code for r in merged):        # JSON shards: flag pairs across them too
        flags.reflag(merged, {n: flags.Fingerprint.from_dict(d) for n, d in references.items()})
    book = Gradebook(exercises=first.exercises, rows=merged, seed=first.seed, references=references,
                     fingerprint=first.fingerprint, shard=None, options=first.options,
                     grader_version=first.grader_version)
    return book, warnings
