"""`attn-grade batch` and `merge`: regrade a class.

One class folder, graded once on exercise 1 with two judge processes:
correct, stub, wrong, crashing, hanging, empty, corrupt-notebook and
top-level-notebook submissions give the expected rows, and none stops the
batch.  Then: the cache skips what was graded, --force regrades, a changed
file is regraded alone, shards + merge equal the unsharded gradebook, and a
judge that hangs or dies costs one row, not the batch.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import batch
from grader.batch import BatchOptions, Judge, discover, merge, parse_shard, run_batch, take_shard
from grader.cli import main
from grader.errors import GraderError
from tests.conftest import EXERCISES, FIXTURES, SOLUTIONS

pytestmark = pytest.mark.slow
FINGERPRINT = batch.fingerprint      # the real one (the class fixture pins it)

STUDENTS = ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank"]
HANG = ("import torch\n\ndef scaled_dot_product_attention(q, k, v):\n    while True:\n        pass\n\n"
        "class SelfAttention(torch.nn.Module):\n    def __init__(self, d_model):\n"
        "        while True:\n            pass\n")


def make_class(root: Path) -> Path:
    subs = root / "submissions"
    subs.mkdir(parents=True)
    for name in ("alice", "bob", "carol", "dave", "erin", "frank", "hank", "__MACOSX", ".ipynb_checkpoints"):
        (subs / name).mkdir()
    for py in SOLUTIONS.glob("*.py"):
        shutil.copy(py, subs / "alice" / py.name)                          # correct
    for py in EXERCISES.glob("*.py"):
        shutil.copy(py, subs / "bob" / py.name)                            # the untouched stubs
    shutil.copy(FIXTURES / "ex01" / "wrong_no_scale.py", subs / "carol" / "ex01_attention.py")
    (subs / "dave" / "ex01_attention.py").write_text("import os\nos._exit(3)\n")   # kills its worker
    (subs / "erin" / "ex01_attention.py").write_text(HANG)                 # every call hangs
    (subs / "hank" / "ex01_attention.ipynb").write_text('{"cells": [')     # corrupt notebook
    shutil.copy(FIXTURES / "notebooks" / "jupyter_ex01_attention.ipynb", subs / "gina.ipynb")
    (subs / "__MACOSX" / "ex01_attention.py").write_text("raise SystemExit\n")   # not a student
    return subs


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded once through the CLI (the cache fingerprint pinned,
    as other edits to the grader would otherwise invalidate it mid-test)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch, "fingerprint", lambda: "test-fingerprint")
        root = tmp_path_factory.mktemp("batch")
        subs = make_class(root)
        out = root / "out" / "grades.csv"
        result = CliRunner().invoke(main, ["batch", str(subs), "-e", "1", "--jobs", "2",
                                           "--call-timeout", "2", "--max-examples", "5",
                                           "--output", str(out)])
        yield {"root": root, "subs": subs, "csv": out, "result": result, "mp": mp}


def rows_of(text: str) -> dict[str, dict]:
    return {r["student"]: r for r in csv.DictReader(io.StringIO(text))}


def options(**extra) -> BatchOptions:
    base = dict(exercises=[1], jobs=2, call_timeout=2.0, max_examples=5)
    base.update(extra)
    return BatchOptions(**base)


def test_the_class_gradebook(graded):
    result = graded["result"]
    assert result.exit_code == 0, result.output
    text = graded["csv"].read_text()
    assert text.splitlines()[0] == "student,ex01_attention,total,max_total,status,note,hash"
    rows = rows_of(text)
    assert list(rows) == STUDENTS                      # sorted; __MACOSX and dot-folders skipped
    expected = {                                       # student: (points, status, note)
        "alice": ("10.00", "graded", ""),
        "bob": ("0.00", "graded", "1: not_implemented"),
        "dave": ("0.00", "graded", "1: crashed"),
        "erin": ("0.00", "graded", "1: timeout"),
        "frank": ("0.00", "empty", "no exercise file"),
        "gina": ("10.00", "graded", ""),               # a notebook straight in the folder
        "hank": ("0.00", "graded", "1: error"),
    }
    for student, (points, status, note) in expected.items():
        row = rows[student]
        assert (row["ex01_attention"], row["total"], row["status"], row["note"]) == (
            points, points, status, note), row
        assert row["max_total"] == "10.00"
    carol = rows["carol"]
    assert 0 < float(carol["total"]) < 10 and carol["note"] == "1: failed"
    book = json.loads(graded["csv"].with_suffix(".json").read_text())
    assert book["kind"] == "attn-grade-gradebook" and book["exercises"] == [1]
    reports = {s["student"]: s["report"] for s in book["students"]}
    assert reports["frank"] is None
    scale = next(t for t in reports["carol"]["exercises"][0]["tests"] if t["status"] == "failed")
    assert scale["message"]
    hank = reports["hank"]["exercises"][0]["tests"][0]
    assert "not a readable notebook" in hank["message"]


def test_rerun_uses_the_cache_and_force_regrades(graded):
    subs, csv_text = graded["subs"], graded["csv"].read_text()
    book, stats = run_batch(subs, options())
    assert (stats.graded, stats.cached, stats.empty) == (0, 7, 1)
    assert book.csv_text() == csv_text
    # --force on a shard: bob and frank; frank is empty (nothing to grade), bob is regraded
    book, stats = run_batch(subs, options(force=True, shard=(2, 4)))
    assert [r.student for r in book.sorted_rows()] == ["bob", "frank"]
    assert (stats.graded, stats.cached) == (1, 0)
    assert rows_of(book.csv_text())["bob"] == rows_of(csv_text)["bob"]
    # a changed file: only that submission is graded again
    carol = subs / "carol" / "ex01_attention.py"
    original = carol.read_text()
    carol.write_text(original + "\n# one more comment\n")
    try:
        book, stats = run_batch(subs, options())
        assert (stats.graded, stats.cached) == (1, 6)
    finally:
        carol.write_text(original)


def test_shards_merged_equal_the_unsharded_gradebook(graded, tmp_path):
    subs, csv_text = graded["subs"], graded["csv"].read_text()
    paths = []
    for index in (1, 2, 3):
        book, _ = run_batch(subs, options(shard=(index, 3)))
        paths += book.write(tmp_path / f"shard-{index}.csv")          # .csv and .json
    shard_students = [set(rows_of(p.read_text())) for p in paths if p.suffix == ".csv"]
    assert set.union(*shard_students) == set(STUDENTS)
    assert sum(map(len, shard_students)) == len(STUDENTS)           # a partition
    merged, warnings = merge([p for p in paths if p.suffix == ".json"])
    assert warnings == [] and merged.csv_text() == csv_text
    from_csv, _ = merge([p for p in paths if p.suffix == ".csv"])
    assert from_csv.csv_text() == csv_text
    result = CliRunner().invoke(main, ["merge", *[str(p) for p in paths if p.suffix == ".json"],
                                       "--output", str(tmp_path / "gradebook.csv")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "gradebook.csv").read_text() == csv_text
    book = json.loads((tmp_path / "gradebook.json").read_text())
    assert [s["student"] for s in book["students"]] == STUDENTS and book["shard"] is None


def test_merge_refuses_shards_of_different_batches(tmp_path):
    one = batch.Gradebook(exercises=[1], rows=[batch.Row("a", "", "graded", {1: 1.0}, 10.0)],
                          seed=1, fingerprint="x")
    two = batch.Gradebook(exercises=[2], rows=[], seed=1, fingerprint="x")
    clash = batch.Gradebook(exercises=[1], rows=[batch.Row("a", "", "graded", {1: 2.0}, 10.0)],
                            seed=1, fingerprint="x")
    p1, p2, p3 = (book.write(tmp_path / f"{name}.json")[0]
                  for name, book in (("one", one), ("two", two), ("clash", clash)))
    with pytest.raises(GraderError, match="not shards of one batch"):
        merge([p1, p2])
    with pytest.raises(GraderError, match="different results"):
        merge([p1, p3])


def _processes_in(folder: Path) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.readlink(f"/proc/{pid}/cwd").startswith(str(folder)):
                    found.append(int(pid))
            except OSError:
                pass
    return found


def test_a_judge_past_the_timeout_is_stopped_and_the_batch_goes_on(tmp_path):
    subs = tmp_path / "subs"
    (subs / "stuck").mkdir(parents=True)
    (subs / "stuck" / "ex01_attention.py").write_text("while True:\n    pass\n")   # hangs on import
    (subs / "nobody").mkdir()
    book, stats = run_batch(subs, options(jobs=1, timeout=3.0, cache_dir=tmp_path / "cache"))
    rows = {r.student: r for r in book.rows}
    assert rows["stuck"].status == "timeout" and "longer than 3 s" in rows["stuck"].note
    assert rows["stuck"].total is None and rows["nobody"].status == "empty"
    assert stats.failed == 1
    assert _processes_in(tmp_path / "cache") == []          # the judge (and its zygote) are gone
    assert not list((tmp_path / "cache").glob("*.json"))    # failures are not cached
    text = book.csv_text()
    assert "stuck,,,10.00,timeout," in text


def test_a_judge_that_dies_costs_one_row(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'boom: the judge could not start' >&2\nexit 7\n")
    fake.chmod(0o755)
    judge = Judge(tmp_path / "logs" / "judge.log", python=str(fake))
    reply = judge.run({"id": 0, "path": "x", "exercises": [1], "seed": 1}, timeout=30)
    assert reply["ok"] is False and reply["kind"] == "crashed"
    assert "boom" in reply["message"]


def test_discovery_and_shards(tmp_path):
    for name in ("b", "a", ".cache", "__MACOSX"):
        (tmp_path / name).mkdir()
    (tmp_path / "c.ipynb").write_text("{}")
    (tmp_path / "notes.txt").write_text("")
    students = discover(tmp_path)
    assert [s for s, _ in students] == ["a", "b", "c"]
    slices = [take_shard(list(range(10)), (i, 3)) for i in (1, 2, 3)]
    assert slices == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert parse_shard("2/3") == (2, 3) and parse_shard(None) is None
    nested = tmp_path / "a" / "course-main" / "exercises"      # an unzipped repository
    nested.mkdir(parents=True)
    (tmp_path / "a" / "course-main" / "README.md").write_text("")
    (nested / "ex02_masks.py").write_text("x = 1\n")
    assert batch.submission_root(tmp_path / "a") == nested
    assert batch.submission_root(tmp_path / "b") == tmp_path / "b"
    for bad in ("0/3", "4/3", "1-3", "a/b", "1/0"):
        with pytest.raises(GraderError):
            parse_shard(bad)


def test_batch_command_explains_a_missing_folder(tmp_path):
    result = CliRunner().invoke(main, ["batch", str(tmp_path / "nope"), "-e", "1"])
    assert result.exit_code == 2 and "no submissions folder" in result.output


def test_fingerprint_follows_the_code_that_decides_grades(tmp_path, monkeypatch):
    copy = tmp_path / "grader"
    shutil.copytree(Path(batch.__file__).parent, copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(batch, "_PACKAGE_ROOT", tmp_path)
    first = FINGERPRINT()
    (copy / "render" / "rich.py").write_text("# only how results look\n")
    assert FINGERPRINT() == first
    checks = copy / "hidden" / "checks.py"
    checks.write_text(checks.read_text() + "\n# a changed tolerance\n")
    assert FINGERPRINT() != first
