"""merge: shards joined into the gradebook an unsharded run writes, flags across shards included."""

from __future__ import annotations

import pytest

from grader.batch import flags
from grader.batch.gradebook import Gradebook, Row, RowStatus
from grader.batch.merge import merge
from grader.batch.writers import csv_text, write_gradebook
from grader.errors import GraderError
from grader.submission import Submission
from tests.batch.test_flags import EINSUM, LOOPS, SOLVED, STUB, restyled

CODES = {"ann": EINSUM, "ben": restyled(EINSUM), "cat": LOOPS, "dan": SOLVED}


def shard(students: list[str], tmp_path) -> Gradebook:
    rows, sources = [], {}
    for student in students:
        folder = tmp_path / student
        folder.mkdir(exist_ok=True)
        (folder / "ex01_attention.py").write_text(CODES[student])
        sources[student] = Submission.from_path(folder)
        rows.append(Row(student, str(folder), RowStatus.GRADED, {1: 10.0}, 10.0))
    references = flags.flag_rows(rows, sources, [1], stubs={1: STUB}, solutions={1: SOLVED})
    return Gradebook(exercises=[1], rows=rows, seed=1, fingerprint="f",
                     references={n: p.to_dict() for n, p in references.items()})


def test_flags_across_shards_are_found_by_merge(tmp_path):
    whole = shard(sorted(CODES), tmp_path)
    assert whole.row("ann").flags == ["ex01: identical to ben"]
    assert whole.row("dan").flags == ["ex01: identical to the reference solution"]
    assert whole.row("cat").flags == []
    one, two = shard(["ann", "cat"], tmp_path), shard(["ben", "dan"], tmp_path)
    assert one.row("ann").flags == []                          # ben is in the other shard
    paths = write_gradebook(one, tmp_path / "s1.json") + write_gradebook(two, tmp_path / "s2.json")
    merged, warnings = merge(paths)
    assert warnings == [] and csv_text(merged) == csv_text(whole)
    assert merged.row("ben").flags == ["ex01: identical to ann"]


def test_merge_refuses_shards_of_different_batches(tmp_path):
    one = Gradebook(exercises=[1], rows=[Row("a", "", RowStatus.GRADED, {1: 1.0}, 10.0)], seed=1,
                    fingerprint="x")
    two = Gradebook(exercises=[2], rows=[], seed=1, fingerprint="x")
    clash = Gradebook(exercises=[1], rows=[Row("a", "", RowStatus.GRADED, {1: 2.0}, 10.0)], seed=1,
                      fingerprint="x")
    p1, p2, p3 = (write_gradebook(book, tmp_path / f"{name}.json")[0]
                  for name, book in (("one", one), ("two", two), ("clash", clash)))
    with pytest.raises(GraderError, match="not shards of one batch"):
        merge([p1, p2])
    with pytest.raises(GraderError, match="different results"):
        merge([p1, p3])
    with pytest.raises(GraderError, match="nothing to merge"):
        merge([])
