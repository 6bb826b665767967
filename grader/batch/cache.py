"""Cached reports, outside the class folder, keyed by snapshot hash + grader fingerprint.

A cached grade is reused only for the same snapshot (the bytes graded), the
same grader (version + the source that decides grades) and the same grading
settings.  The cache never lives inside the class folder: students' code
could reach it there, and a class folder is often shared or zipped.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from grader.version import __version__
from grader.errors import GraderError
from grader.results import Report, report_from_dict

CACHE_FOLDER_NAME = ".attn-grade-cache"
_GRADER = Path(__file__).resolve().parents[1]

# Parts of the grader that only present or organise results: editing them
# does not change a grade, so it does not invalidate the cache.
_PRESENTATION = ("render/", "authoring/", "templates/", "batch/", "commands/", "verify.py",
                 "notebook.py", "cli.py", "export.py", "ci.py", "devices.py")


def grader_fingerprint(grader: Path = _GRADER) -> str:
    """The grader version plus a hash of the source that decides grades
    (hidden tests, sandbox, runner...): a cached grade is reused only by a
    grader that would give the same one.  (One function, so the report's own
    fingerprint can replace it.)"""
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(grader.rglob("*")):
        rel = path.relative_to(grader).as_posix()
        if (path.suffix in (".py", ".ini", ".json") and "__pycache__" not in path.parts
                and not rel.startswith(_PRESENTATION)):
            digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{__version__}+{digest.hexdigest()[:12]}"


def cache_key(snapshot_hash: str, exercises: list[int], settings: dict, fingerprint: str) -> str:
    blob = json.dumps({"snapshot": snapshot_hash, "grader": fingerprint, "exercises": exercises,
                       "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "attn-grade" / "batch"


def default_cache_dir(output: Path, submissions: Path) -> Path:
    """Beside the output file; the user cache folder when that would be inside the class folder."""
    beside = output.resolve().parent / CACHE_FOLDER_NAME
    return user_cache_dir() if is_inside(beside, submissions) else beside


def is_inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Cache:
    def __init__(self, folder: Path, submissions: Path | None = None) -> None:
        if submissions is not None and is_inside(folder, submissions):
            raise GraderError(f"the cache folder {folder} is inside the class folder {submissions}",
                              hint="pass a --cache-dir outside it (students' code must not reach it)")
        self.folder = folder

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> Report | None:
        try:
            data = json.loads(self.path(key).read_text(encoding="utf-8"))
            return report_from_dict(data["report"])    # still readable by this grader
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, report: Report) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path(key), json.dumps({"key": key, "report": report.to_dict()}) + "\n")
