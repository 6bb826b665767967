"""The cache: outside the class folder, keyed by snapshot + grader fingerprint + settings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.batch import cache
from grader.batch.cache import Cache, cache_key, default_cache_dir, grader_fingerprint
from grader.errors import GraderError
from tests.reports import fixed_report


def test_the_key_depends_on_snapshot_grader_settings_and_exercises():
    base = cache_key("h", [1], {"seed": 1}, "0.1.0+abc")
    assert base == cache_key("h", [1], {"seed": 1}, "0.1.0+abc")
    assert len({base, cache_key("h2", [1], {"seed": 1}, "0.1.0+abc"),
                cache_key("h", [1, 2], {"seed": 1}, "0.1.0+abc"),
                cache_key("h", [1], {"seed": 2}, "0.1.0+abc"),
                cache_key("h", [1], {"seed": 1}, "0.1.0+abd")}) == 5


def test_a_cache_inside_the_class_folder_is_refused(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    with pytest.raises(GraderError, match="inside the class folder"):
        Cache(subs / ".attn-grade-cache", submissions=subs)
    # beside an output written into the class folder: the user's cache folder instead
    assert not cache.is_inside(default_cache_dir(subs / "grades.csv", subs), subs)
    assert default_cache_dir(tmp_path / "out" / "g.csv", subs) == (tmp_path / "out" / ".attn-grade-cache")


def test_put_and_get_a_report(tmp_path):
    store = Cache(tmp_path / "c")
    store.put("k", fixed_report())
    assert store.get("k").to_dict() == fixed_report().to_dict()
    (tmp_path / "c" / "bad.json").write_text("{")
    assert store.get("bad") is None and store.get("missing") is None


def test_fingerprint_follows_the_code_that_decides_grades(tmp_path):
    copy = tmp_path / "grader"
    shutil.copytree(Path(cache.__file__).parents[1], copy, ignore=shutil.ignore_patterns("__pycache__"))
    first = grader_fingerprint(copy)
    (copy / "render" / "rich.py").write_text("# only how results look\n")
    (copy / "batch" / "writers.py").write_text("# only how gradebooks are written\n")
    assert grader_fingerprint(copy) == first
    checks = copy / "hidden" / "checks.py"
    checks.write_text(checks.read_text() + "\n# a changed tolerance\n")
    assert grader_fingerprint(copy) != first
