"""`attn-grade batch` end to end, on one small class graded once (exercise 1, two judges).

Correct, stub, wrong, crashing, hanging, empty, corrupt-notebook and
top-level-notebook submissions give the expected rows and none stops the
batch; the cache lives outside the class folder and is keyed by what was
graded; feedback is written per student; shards + merge equal the whole.
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

from grader.batch.gradebook import RowStatus
from grader.batch.jobs import JudgeReply
from grader.batch.merge import merge
from grader.batch.run import BatchOptions, run_batch
from grader.batch.snapshot import SnapshotFolder
from grader.batch.writers import csv_text, write_gradebook
from grader.commands.batch import batch_command, diff_command, merge_command
from grader.results import report_from_dict
from tests.batch.classroom import STUDENTS, make_class
from tests.conftest import FIXTURES, SOLUTIONS

pytestmark = pytest.mark.slow
FINGERPRINT = "test-fingerprint"     # pinned: other edits to the grader must not invalidate the cache mid-test


def rows_of(text: str) -> dict[str, dict]:
    return {r["student"]: r for r in csv.DictReader(io.StringIO(text))}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded once through the command; a classmate's folder is
    rewritten after the snapshots are taken (as a submission's code could)."""
    root = tmp_path_factory.mktemp("batch")
    subs = make_class(root)
    out = root / "out" / "grades.csv"
    cache = root / "cache"
    alice = subs / "alice" / "ex01_attention.py"
    original = alice.read_text()
    wrong = (FIXTURES / "ex01" / "wrong_no_scale.py").read_text()

    def tamper(event, **info):
        if event == "start":                     # after every snapshot, before any grading
            alice.write_text(wrong)

    import grader.commands.batch as command

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(command, "ProgressView", lambda: tamper)
        mp.setattr("grader.batch.run.grader_fingerprint", lambda: FINGERPRINT)
        result = CliRunner().invoke(batch_command, [
            str(subs), "-e", "1", "--jobs", "2", "--call-timeout", "2", "--max-examples", "5",
            "--output", str(out), "--cache-dir", str(cache), "--feedback-dir", str(root / "feedback"),
            "--stubs", str(SOLUTIONS.parent / "exercises"), "--solutions", str(SOLUTIONS)])
    tampered = alice.read_text()
    alice.write_text(original)
    return {"root": root, "subs": subs, "csv": out, "cache": cache, "result": result,
            "tampered": tampered == wrong}


class FakePool:
    """Stands in for the judges where a test is about what is sent to them, not grading:
    every job is answered with `report` (and recorded)."""

    jobs: list = []

    def __init__(self, report):
        self.report = report

    def __call__(self, *args, **kwargs):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def grade(self, jobs):
        for job in jobs:
            FakePool.jobs.append(job)
            yield job, JudgeReply.graded(job.id, report_from_dict(self.report.to_dict()))


def full_marks(graded):
    book = json.loads(graded["csv"].with_suffix(".json").read_text())
    return report_from_dict(next(s["report"] for s in book["students"] if s["student"] == "alice"))


def options(cache: Path, **extra) -> BatchOptions:
    base = dict(exercises=[1], jobs=2, call_timeout=2.0, max_examples=5, cache_dir=cache,
                fingerprint=FINGERPRINT, solutions=SOLUTIONS, stubs=SOLUTIONS.parent / "exercises")
    base.update(extra)
    return BatchOptions(**base)


def test_the_class_gradebook(graded):
    result = graded["result"]
    assert result.exit_code == 0, result.output
    text = graded["csv"].read_text()
    assert text.splitlines()[0] == "student,ex01_attention,total,max_total,status,note,hash,flags"
    rows = rows_of(text)
    assert list(rows) == STUDENTS
    expected = {
        "alice": ("10.00", "graded", ""),
        "bob": ("0.00", "graded", "1: not_implemented"),
        "dave": ("0.00", "graded", "1: crashed"),
        "erin": ("0.00", "graded", "1: timeout"),
        "frank": ("0.00", "empty", "no exercise file"),
        "gina": ("10.00", "graded", ""),
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
    reports = {s["student"]: s["report"] for s in book["students"]}
    assert reports["frank"] is None
    assert reports["alice"]["submission"] == str(graded["subs"] / "alice")   # the label, not the snapshot
    hank = reports["hank"]["exercises"][0]["tests"][0]
    assert "not a readable notebook" in hank["message"]


def test_what_is_graded_is_the_snapshot_taken_before_any_student_code_ran(graded):
    assert graded["tampered"]                               # alice's folder was rewritten mid-batch...
    assert rows_of(graded["csv"].read_text())["alice"]["total"] == "10.00"   # ...and graded as it was
    book, stats = run_batch(graded["subs"], options(graded["cache"]))
    assert (stats.graded, stats.cached) == (0, 7)           # the original content: the same cache keys
    assert csv_text(book) == graded["csv"].read_text()


def test_the_cache_is_outside_the_class_folder_and_keyed_by_content(graded, tmp_path):
    subs, cache = graded["subs"], graded["cache"]
    assert len(list(cache.glob("*.json"))) == 7             # graded reports; empty frank is not cached
    inside = [p for p in subs.rglob("*") if "cache" in p.name or p.suffix == ".json"]
    assert inside == []
    FakePool.jobs = []
    scratch = shutil.copytree(cache, tmp_path / "cache")      # the fake grade must not reach the shared cache
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("grader.batch.run.JudgePool", FakePool(full_marks(graded)))
        book, stats = run_batch(subs, options(scratch, force=True, shard=(2, 4)))   # bob and frank
    assert (stats.graded, stats.cached, stats.empty) == (1, 0, 1)
    assert len(FakePool.jobs) == 1 and FakePool.jobs[0].path != str(subs / "bob")   # a snapshot
    assert book.row("bob").total == 10.0


def test_feedback_per_student(graded):
    folder = graded["root"] / "feedback"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{s}.{ext}" for s in STUDENTS for ext in ("md", "json"))
    carol = (folder / "carol.md").read_text()
    assert "failed" in carol and "10" in carol
    assert json.loads((folder / "carol.json").read_text())["exercises"][0]["number"] == 1
    assert "No exercise file" in (folder / "frank.md").read_text()
    assert not any("identical" in p.read_text() for p in folder.iterdir())   # flags stay with the instructor


def test_flags_in_the_gradebook(graded):
    rows = rows_of(graded["csv"].read_text())
    assert rows["alice"]["flags"] == "ex01: identical to the reference solution"
    assert rows["bob"]["flags"] == ""                  # untouched stubs never pair up
    assert "flags (for a human to look at" in graded["result"].output


def test_shards_merged_equal_the_unsharded_gradebook(graded, tmp_path):
    csv_text_ = graded["csv"].read_text()
    paths = []
    for index in (1, 2, 3):
        book, _ = run_batch(graded["subs"], options(graded["cache"], shard=(index, 3)))
        paths += write_gradebook(book, tmp_path / f"shard-{index}.csv")
    merged, warnings = merge([p for p in paths if p.suffix == ".json"])
    assert warnings == [] and csv_text(merged) == csv_text_
    result = CliRunner().invoke(merge_command, [*[str(p) for p in paths if p.suffix == ".csv"],
                                                "--output", str(tmp_path / "gradebook.csv")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "gradebook.csv").read_text() == csv_text_


def test_regrade_compare_lists_what_changed(graded, tmp_path):
    carol = graded["subs"] / "carol" / "ex01_attention.py"
    original = carol.read_text()
    shutil.copy(SOLUTIONS / "ex01_attention.py", carol)
    FakePool.jobs = []
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("grader.batch.run.JudgePool", FakePool(full_marks(graded)))
            mp.setattr("grader.batch.run.grader_fingerprint", lambda: FINGERPRINT)
            result = CliRunner().invoke(batch_command, [
                str(graded["subs"]), "-e", "1", "--call-timeout", "2", "--max-examples", "5",
                "--output", str(tmp_path / "new.csv"),
                "--cache-dir", str(shutil.copytree(graded["cache"], tmp_path / "cache")),
                "--compare", str(graded["csv"].with_suffix(".json"))])
    finally:
        carol.write_text(original)
    assert result.exit_code == 0, result.output
    assert "1 graded, 6 from the cache, 1 empty" in result.output       # only the changed file
    assert len(FakePool.jobs) == 1
    assert "1 students changed, 7 unchanged" in result.output
    assert "carol: " in result.output and "→ 10 [submission changed" in result.output
    diff = CliRunner().invoke(diff_command, [str(graded["csv"]), str(tmp_path / "new.csv")])
    assert diff.exit_code == 1 and "carol:" in diff.output


@pytest.mark.parametrize("layout", ["empty", "no submissions"])
def test_a_class_folder_without_submissions_exits_2(tmp_path, layout):
    subs = tmp_path / "subs"
    subs.mkdir()
    if layout == "no submissions":
        (subs / "README.md").write_text("hello")
        (subs / "alice").mkdir()
        (subs / "alice" / "notes.txt").write_text("")
    result = CliRunner().invoke(batch_command, [str(subs), "-e", "1", "-o", str(tmp_path / "g.csv")])
    assert result.exit_code == 2, result.output
    assert "attn-grade: error:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "g.csv").exists()


def test_a_missing_class_folder_exits_2(tmp_path):
    result = CliRunner().invoke(batch_command, [str(tmp_path / "nope"), "-e", "1"])
    assert result.exit_code == 2 and "no submissions folder" in result.output


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
    roots = []

    class RecordedSnapshots(SnapshotFolder):
        def __init__(self):
            super().__init__()
            roots.append(self.root)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("grader.batch.run.SnapshotFolder", RecordedSnapshots)
        book, stats = run_batch(subs, options(tmp_path / "cache", jobs=1, timeout=3.0))
    rows = {r.student: r for r in book.rows}
    assert rows["stuck"].status is RowStatus.TIMEOUT and "longer than 3 s" in rows["stuck"].note
    assert rows["stuck"].total is None and rows["nobody"].status is RowStatus.EMPTY
    assert stats.failed == 1
    assert not list((tmp_path / "cache").glob("*.json"))    # failures are not cached
    assert _processes_in(roots[0]) == [] and not roots[0].exists()   # the judge, its zygote, the snapshots: gone
    assert "stuck,,,10.00,timeout," in csv_text(book)
