"""`attn-grade generate`: write the student stubs in exercises/ and one
notebook per exercise in exercises/notebooks/, from solutions/.

One source of truth: the solutions carry the teaching text and the solution
markers; the stubs and notebooks are derived, byte for byte deterministic.
`--check` only compares, and names the files that are out of date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from grader import registry
from grader.authoring.markers import make_stub
from grader.authoring.notebooks import notebook_text
from grader.errors import GraderError

NOTEBOOKS = "notebooks"


def stub_texts(solutions: Path) -> dict[str, str]:
    """{file name: stub text} for every exercise whose solution exists."""
    stubs = {}
    for exercise in registry.EXERCISES:
        source = solutions / exercise.file
        if source.exists():
            stubs[exercise.file] = make_stub(source.read_text(encoding="utf-8"), exercise.number,
                                             str(source))
    return stubs


def generated_texts(solutions: Path) -> dict[str, str]:
    """{path relative to exercises/: text}: the stubs and the notebooks."""
    out: dict[str, str] = {}
    stubs = stub_texts(solutions)
    for exercise in registry.EXERCISES:
        stub = stubs.get(exercise.file)
        if stub is None:
            continue
        out[exercise.file] = stub
        solution = (solutions / exercise.file).read_text(encoding="utf-8")
        out[f"{NOTEBOOKS}/{exercise.notebook}"] = notebook_text(exercise, stub, solution)
    return out


@dataclass
class GenerateResult:
    stale: list[Path] = field(default_factory=list)      # differed (written unless check)
    unchanged: list[Path] = field(default_factory=list)
    extra: list[Path] = field(default_factory=list)      # in exercises/notebooks/, not generated


def run(solutions: Path, exercises: Path, *, check: bool = False) -> GenerateResult:
    if not solutions.is_dir():
        raise GraderError(f"no solutions folder at {solutions}",
                          hint="run it from the instructor repository, or pass --solutions DIR")
    texts = generated_texts(solutions)
    if not texts:
        raise GraderError(f"{solutions} holds no exercise solution "
                          f"({', '.join(e.file for e in registry.EXERCISES[:2])}, ...)")
    result = GenerateResult()
    for name, text in texts.items():
        target = exercises / name
        current = target.read_bytes() if target.is_file() else None
        if current == text.encode("utf-8"):
            result.unchanged.append(target)
            continue
        result.stale.append(target)
        if not check:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text.encode("utf-8"))   # no newline translation: same bytes everywhere
    nb_dir = exercises / NOTEBOOKS
    if nb_dir.is_dir():
        wanted = {exercises / n for n in texts}
        result.extra = sorted(p for p in nb_dir.glob("*.ipynb") if p not in wanted)
    return result


def generate(solutions: Path, exercises: Path, *, check: bool = False) -> list[Path]:
    """Write (or, with check, only compare) the stubs and notebooks; returns
    the files that differ from what is on disk."""
    return run(solutions, exercises, check=check).stale
