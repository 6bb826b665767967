"""Snapshots: a read-only copy of what a submission is made of, hashed; links never followed."""

from __future__ import annotations

import os
import stat

import pytest

from grader.batch import snapshot
from grader.batch.snapshot import SnapshotError, SnapshotFolder


def test_a_snapshot_is_a_read_only_hashed_copy(tmp_path):
    student = tmp_path / "alice"
    student.mkdir()
    (student / "ex01_attention.py").write_text("x = 1\n")
    (student / "ex02_masks.ipynb").write_text("{}")
    (student / "data.bin").write_bytes(b"\0" * 100)          # not part of a submission
    (student / "secret.py").symlink_to(tmp_path / "elsewhere.py")
    (tmp_path / "elsewhere.py").write_text("not hers\n")
    with SnapshotFolder() as folder:
        assert stat.S_IMODE(folder.root.stat().st_mode) == 0o700
        snap = folder.take(student)
        assert sorted(p.name for p in snap.path.iterdir()) == ["ex01_attention.py", "ex02_masks.ipynb"]
        assert snap.skipped == ("secret.py (a symbolic link)",)
        assert stat.S_IMODE((snap.path / "ex01_attention.py").stat().st_mode) == 0o444
        assert stat.S_IMODE(snap.path.stat().st_mode) == 0o555
        again = folder.take(student)
        assert again.digest == snap.digest and again.path != snap.path
        (student / "ex01_attention.py").write_text("x = 2\n")
        assert folder.take(student).digest != snap.digest
        assert (snap.path / "ex01_attention.py").read_text() == "x = 1\n"   # the copy stays as taken
        root = folder.root
    assert not root.exists()


def test_a_notebook_submission_is_copied_alone(tmp_path):
    (tmp_path / "gina.ipynb").write_text("{}")
    (tmp_path / "ex01_attention.py").write_text("classmate\n")   # beside it in the class folder
    with SnapshotFolder() as folder:
        snap = folder.take(tmp_path / "gina.ipynb")
        assert snap.path.name == "gina.ipynb" and os.listdir(snap.path.parent) == ["gina.ipynb"]


def test_an_oversized_file_is_refused_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot, "MAX_FILE_BYTES", 10)
    (tmp_path / "ex01_attention.py").write_text("x" * 11)
    with SnapshotFolder() as folder, pytest.raises(SnapshotError, match="ex01_attention.py is"):
        folder.take(tmp_path)
