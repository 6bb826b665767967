"""`attn-grade generate`: write the student stubs in exercises/ from solutions/.

One source of truth: the solutions carry the teaching text and the solution
markers; the stubs are derived, byte for byte deterministic.
"""

from __future__ import annotations

from pathlib import Path

from grader import registry
from grader.authoring.markers import make_stub


def stub_texts(solutions: Path) -> dict[str, str]:
    """{file name: stub text} for every exercise whose solution exists."""
    stubs = {}
    for exercise in registry.EXERCISES:
        source = solutions / exercise.file
        if source.exists():
            stubs[exercise.file] = make_stub(source.read_text(encoding="utf-8"), exercise.number,
                                             str(source))
    return stubs


def generate(solutions: Path, exercises: Path, *, check: bool = False) -> list[Path]:
    """Write (or, with check, only compare) the stubs; returns the files that
    differ from what is on disk."""
    stale: list[Path] = []
    for name, text in stub_texts(solutions).items():
        target = exercises / name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            stale.append(target)
            if not check:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
    return stale
