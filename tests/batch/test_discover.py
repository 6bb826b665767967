"""Discovery: who is in a class folder, where their files are, shards, exercises."""

from __future__ import annotations

import pytest

from grader.batch.discover import (discover, discover_class, parse_exercises, parse_shard,
                                   submission_root, take_shard)
from grader.errors import GraderError


def test_discovery_and_shards(tmp_path):
    for name in ("b", "a", ".cache", "__MACOSX"):
        (tmp_path / name).mkdir()
    (tmp_path / "c.ipynb").write_text("{}")
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert [s.name for s in discover(tmp_path)] == ["a", "b", "c"]
    slices = [take_shard(list(range(10)), (i, 3)) for i in (1, 2, 3)]
    assert slices == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert parse_shard("2/3") == (2, 3) and parse_shard(None) is None
    nested = tmp_path / "a" / "course-main" / "exercises"
    nested.mkdir(parents=True)
    (tmp_path / "a" / "course-main" / "README.md").write_text("")
    (nested / "ex02_masks.py").write_text("x = 1\n")
    assert submission_root(tmp_path / "a") == nested
    assert submission_root(tmp_path / "b") == tmp_path / "b"
    for bad in ("0/3", "4/3", "1-3", "a/b", "1/0"):
        with pytest.raises(GraderError):
            parse_shard(bad)


def test_a_class_folder_without_submissions_is_refused(tmp_path):
    with pytest.raises(GraderError, match="holds no submissions"):
        discover_class(tmp_path)
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "README.md").write_text("")
    with pytest.raises(GraderError, match="none of the 1 folders"):
        discover_class(tmp_path)
    (tmp_path / "alice" / "ex01_attention.py").write_text("")
    assert [s.name for s in discover_class(tmp_path)] == ["alice"]


def test_exercise_selection():
    assert parse_exercises(("1,2",)) == [1, 2]
    assert parse_exercises(("masks", "1")) == [1, 2]
    with pytest.raises(GraderError):
        parse_exercises(("99",))
