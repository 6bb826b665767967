"""The grader's own files, as the judge found them when grading began.

A report is only worth the code that graded it.  The judge therefore

1. imports every judge-side module it will need (hidden tests, oracles,
   strategies, the training check, renderers) before the first worker
   starts, so nothing a worker writes can be imported into the judge later;
2. never writes bytecode itself (`sys.dont_write_bytecode`, and
   PYTHONDONTWRITEBYTECODE for every process it starts), so the grader
   package does not change under a correct run;
3. fingerprints every file under the grader package directory -- sources,
   data and bytecode caches alike (a planted `__pycache__/*.pyc` is a
   change) -- reports that fingerprint, and checks it again after grading:
   any difference stops grading with ExitCode.INTERNAL_ERROR, naming the
   files that changed.

Bytecode that pip or Python wrote before grading began is part of the
fingerprint: an install whose fingerprint differs from the one published
for its version (or recorded by the instructor) has been altered.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import marshal
import os
import pkgutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from grader.errors import InternalError

PACKAGE_DIR = Path(__file__).resolve().parent

# Judge-side packages imported before grading: every module in them, except
# the hidden test modules (`test_*`) of exercises not being graded.
JUDGE_PACKAGES = ("grader.hidden", "grader.render")


@dataclass(frozen=True)
class Fingerprint:
    """One sha256 over every file under `root`, and each file's own hash."""

    digest: str
    files: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    root: str = ""

    def changes(self, other: "Fingerprint") -> list[str]:
        """What differs from `other` (a later fingerprint of the same tree),
        as "path (changed|added|removed)", paths relative to the package's
        parent folder (`grader/hidden/test_ex01_attention.py`)."""
        found = []
        for path in sorted(set(self.files) | set(other.files)):
            before, after = self.files.get(path), other.files.get(path)
            if before == after:
                continue
            kind = "added" if before is None else "removed" if after is None else "changed"
            found.append(f"{path} ({kind})")
        return found


class GraderChanged(InternalError):
    """The grader's own files changed while grading: nothing it graded can be trusted."""

    def __init__(self, changes: list[str]):
        shown = ", ".join(changes[:5]) + (f" and {len(changes) - 5} more" if len(changes) > 5 else "")
        super().__init__(
            f"the grader's own files changed during grading: {shown}; grading stopped",
            hint="reinstall attn-grade (pip install --force-reinstall attn-grade) and grade again; "
                 "if it happens again, a submission is writing into the grader")
        self.changes = changes


def fingerprint(root: str | os.PathLike = PACKAGE_DIR) -> Fingerprint:
    """Hash every file under `root`, __pycache__ included; symbolic links
    count by their target's name (they are not followed)."""
    root = Path(root)
    prefix = root.name
    files: dict[str, str] = {}
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(names + [d for d in dirs if os.path.islink(os.path.join(folder, d))]):
            path = os.path.join(folder, name)
            rel = prefix + "/" + os.path.relpath(path, root).replace(os.sep, "/")
            files[rel] = _file_hash(path)
    digest = hashlib.sha256()
    for rel, value in files.items():
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\0" + value.encode() + b"\n")
    return Fingerprint(digest.hexdigest(), files, str(root))


def _file_hash(path: str) -> str:
    if os.path.islink(path):
        return "link:" + os.readlink(path)
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        return f"unreadable:{exc.errno}"
    return digest.hexdigest()


def verify(expected: Fingerprint) -> None:
    """Raise GraderChanged when the files under `expected.root` differ now."""
    now = fingerprint(expected.root)
    if now.digest != expected.digest:
        raise GraderChanged(expected.changes(now) or ["(the file list)"])


def planted_bytecode(root: str | os.PathLike = PACKAGE_DIR) -> list[str]:
    """Bytecode caches that Python would load instead of their source but
    that do not hold the compiled source: planted, or written by an altered
    copy.  Compiles every cached module, so it is for `attn-grade doctor`
    and for checking an install, not for each grading run."""
    root = Path(root)
    found = []
    tag = sys.implementation.cache_tag
    for pyc in sorted(root.rglob(f"__pycache__/*.{tag}*.pyc")):
        stem, _, rest = pyc.name.partition(f".{tag}")
        source = pyc.parent.parent / f"{stem}.py"
        if not source.is_file():
            continue  # never loaded: a cache is only used next to its source
        optimize = int(rest[len(".opt-")]) if rest.startswith(".opt-") else 0
        data, text = pyc.read_bytes(), source.read_bytes()
        if len(data) < 16 or data[:4] != importlib.util.MAGIC_NUMBER:
            continue  # Python ignores it and compiles the source
        flags = int.from_bytes(data[4:8], "little")
        if flags & 1:
            used = data[8:16] == importlib.util.source_hash(text) or not flags & 2
        else:
            stat = source.stat()
            used = (int.from_bytes(data[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF
                    and int.from_bytes(data[12:16], "little") == stat.st_size & 0xFFFFFFFF)
        if not used:
            continue
        try:
            code = marshal.loads(data[16:])
        except (EOFError, ValueError, TypeError):
            code = None
        if code != compile(text, str(source), "exec", dont_inherit=True, optimize=optimize):
            found.append(pyc.relative_to(root.parent).as_posix())
    return found


def never_write_bytecode() -> None:
    """No .pyc from the judge, nor from any process it starts."""
    sys.dont_write_bytecode = True
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"


def import_judge_modules(test_modules: Iterable[str] | None = None,
                         packages: tuple[str, ...] = JUDGE_PACKAGES) -> list[str]:
    """Import the judge-side modules now (with what they import: the training
    check comes with exercise 8's tests), so that nothing is imported from
    disk once workers run.  `test_modules`: the hidden test files to import
    (`test_ex01_attention.py`...); None: all.  Returns the module names."""
    wanted = None if test_modules is None else {m.removesuffix(".py") for m in test_modules}
    names = []
    with warnings.catch_warnings():
        # Imported outside their own pytest session (whose ini registers the
        # hidden tests' marks): a surrounding pytest would warn about them.
        warnings.simplefilter("ignore")
        for package_name in packages:
            package = importlib.import_module(package_name)
            folder = Path(package.__file__).parent
            for info in pkgutil.iter_modules(package.__path__, prefix=package_name + "."):
                short = info.name.rpartition(".")[2]
                if wanted is not None and short.startswith("test_") and short not in wanted:
                    continue
                if not ((folder / f"{short}.py").is_file()
                        or (folder / short / "__init__.py").is_file()):
                    continue  # bytecode without a source: never the grader's own module
                importlib.import_module(info.name)
                names.append(info.name)
    return names


# The first fingerprint taken in this process, per root: a judge that grades
# many submissions (batch) refuses to go on once its files changed.
_FIRST: dict[str, Fingerprint] = {}


def freeze_judge(test_modules: Iterable[str] | None = None,
                 root: str | os.PathLike | None = None) -> Fingerprint:
    """Call before the first worker starts: no bytecode from now on, the
    judge's modules imported (`test_modules`: see import_judge_modules), and
    the fingerprint to check afterwards (the same as this process's first
    one, or GraderChanged)."""
    never_write_bytecode()
    import_judge_modules(test_modules)
    now = fingerprint(root or PACKAGE_DIR)
    first = _FIRST.setdefault(now.root, now)
    if first.digest != now.digest:
        raise GraderChanged(first.changes(now) or ["(the file list)"])
    return now
