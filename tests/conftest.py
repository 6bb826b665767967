"""Shared helpers for the harness's own tests."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

# No test process writes bytecode under grader/: a grading run in another
# xdist worker would see its files change (grader/fingerprint.py) and stop.
sys.dont_write_bytecode = True
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"

import pytest

from grader import registry, runner
from grader.results import ExerciseResult, Report

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"
EXERCISES = REPO / "exercises"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOLDEN = Path(__file__).resolve().parent / "golden"


def make_submission(dest: Path, overrides: dict[str, str | Path] | None = None, *,
                    base: Path | None = SOLUTIONS) -> Path:
    """A submission folder: the reference solutions (so dependencies are
    right) with some files replaced.  `overrides`: {file name: text or path}."""
    dest.mkdir(parents=True, exist_ok=True)
    if base is not None:
        for py in base.glob("*.py"):
            shutil.copy(py, dest / py.name)
    for name, content in (overrides or {}).items():
        if isinstance(content, Path):
            if content.is_dir():
                for item in content.iterdir():
                    if item.suffix in (".py", ".ipynb"):
                        shutil.copy(item, dest / item.name)
                continue
            content = content.read_text(encoding="utf-8")
        (dest / name).write_text(content, encoding="utf-8")
    return dest


def grade(submission: Path, *numbers: int, seed: int = 12345, **options) -> Report:
    """Grade exercises `numbers` of `submission` in this process."""
    options.setdefault("train", False)
    exercises = [registry.get(n) for n in numbers] if numbers else list(registry.EXERCISES)
    return runner.grade(submission, exercises, runner.GradingOptions(seed=seed, **options))


def grade_one(submission: Path, number: int, **options) -> ExerciseResult:
    report = grade(submission, number, **options)
    assert len(report.exercises) == 1
    return report.exercises[0]


def describe(result: ExerciseResult) -> str:
    """A readable dump for assertion messages."""
    lines = [f"exercise {result.number}: {result.status.value} {result.points:.2f}/{result.max_points}"]
    for t in result.tests:
        lines.append(f"  {t.name}: {t.status.value} {t.message[:300]!r} hint={t.hint[:120]!r}")
    return "\n".join(lines)


def import_solution(module: str):
    """A solution module imported directly (the harness's tests may; the judge
    never does).  Exercise modules it imports are removed from sys.modules
    again, so no later test finds them by accident."""
    before = set(sys.modules)
    sys.path.insert(0, str(SOLUTIONS))
    try:
        spec = importlib.util.spec_from_file_location(f"_solution_{module}", SOLUTIONS / f"{module}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(SOLUTIONS))
        for name in set(sys.modules) - before:
            if registry.by_module(name) is not None:
                del sys.modules[name]


@pytest.fixture
def submission_dir(tmp_path):
    return tmp_path / "submission"
