"""Which students a class folder holds, where each one's exercise files are,
which exercises to grade, and a shard's slice of the class."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader import registry
from grader.errors import GraderError
from grader.registry import Exercise
from grader.submission import module_for_name

_PACKAGE = Path(registry.__file__).resolve().parent
HIDDEN_DIR = _PACKAGE / "hidden"
SKIPPED_PREFIXES = (".", "__")        # .attn-grade-cache, .ipynb_checkpoints, __MACOSX, ...


@dataclass(frozen=True)
class Student:
    """One entry of a class folder: a sub-folder or a notebook, named by it."""

    name: str
    path: Path        # the folder (or notebook) found in the class folder
    root: Path        # where the exercise files are (an unzipped repo nests them)


def hidden_tests_exist(exercise: Exercise) -> bool:
    return (HIDDEN_DIR / exercise.test_module).is_file()


def gradable_exercises() -> list[Exercise]:
    """The exercises whose hidden tests exist."""
    return [e for e in registry.EXERCISES if hidden_tests_exist(e)]


def parse_exercises(values: tuple[str, ...] | list[str]) -> list[int]:
    """`-e 1 -e 2`, `--exercises 1,2,3` or slugs; default: every exercise with hidden tests."""
    keys = [k for v in values for k in v.replace(",", " ").split()]
    if not keys:
        chosen = gradable_exercises()
        if not chosen:
            raise GraderError("no exercise has hidden tests to grade")
        return [e.number for e in chosen]
    try:
        chosen = [registry.get(k) for k in keys]
    except registry.UnknownExercise as exc:
        raise GraderError(str(exc.args[0])) from None
    missing = [e for e in chosen if not hidden_tests_exist(e)]
    if missing:
        raise GraderError(f"no hidden tests for exercise(s) {', '.join(str(e.number) for e in missing)}")
    return sorted({e.number for e in chosen})


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise GraderError(f"--shard {text!r}: expected i/n, e.g. 1/4") from None
    if count < 1 or not 1 <= index <= count:
        raise GraderError(f"--shard {text!r}: i must be between 1 and n (1/{max(count, 1)} ... "
                          f"{max(count, 1)}/{max(count, 1)})")
    return index, count


def take_shard(items: list, shard: tuple[int, int] | None) -> list:
    """Every n-th item from the i-th: a deterministic slice, a partition over i."""
    if shard is None:
        return list(items)
    index, count = shard
    return list(items)[index - 1::count]


def has_exercise_files(folder: Path) -> bool:
    return any(f.suffix in (".py", ".ipynb") and not f.name.startswith("test_")
               and module_for_name(f.stem) is not None
               for f in folder.iterdir() if f.is_file() and not f.is_symlink())


def submission_root(path: Path, depth: int = 3) -> Path:
    """The folder holding a student's exercise files: `path` itself, or the
    shallowest folder under it that has some (an unzipped `alice/course-main/
    exercises/`), first in sorted order."""
    if not path.is_dir():
        return path
    level = [path]
    for _ in range(depth + 1):
        for folder in level:
            if has_exercise_files(folder):
                return folder
        level = [child for folder in level for child in sorted(folder.iterdir())
                 if child.is_dir() and not child.is_symlink()
                 and not child.name.startswith(SKIPPED_PREFIXES)]
    return path


def discover(root: Path) -> list[Student]:
    """Each sub-folder and each notebook of the class folder `root`, sorted by name."""
    if not root.is_dir():
        raise GraderError(f"no submissions folder at {root}",
                          hint="pass a folder holding one sub-folder (or notebook) per student")
    found: dict[str, Path] = {}
    for path in sorted(root.iterdir()):
        if path.name.startswith(SKIPPED_PREFIXES) or path.is_symlink():
            continue
        if path.is_dir():
            found.setdefault(path.name, path)
        elif path.suffix == ".ipynb":
            found.setdefault(path.stem, path)
    return [Student(name, path, submission_root(path)) for name, path in sorted(found.items())]


def discover_class(root: Path) -> list[Student]:
    """`discover`, refusing a class folder with no submission in it at all
    (the wrong folder, most likely): exit 2 with one line, not an empty gradebook."""
    students = discover(root)
    if not students:
        raise GraderError(f"{root} holds no submissions (no sub-folder or notebook per student)",
                          hint="pass the folder that holds one sub-folder (or notebook) per student")
    if not any(s.root.is_file() or has_exercise_files(s.root) for s in students):
        raise GraderError(f"none of the {len(students)} folders in {root} holds an exercise file "
                          f"(e.g. {registry.EXERCISES[0].file})",
                          hint="pass the folder that holds one sub-folder (or notebook) per student")
    return students
