"""A judge-owned, read-only copy of each submission: what is hashed is what is graded.

Every submission of the class is copied into the batch's own temporary
folder (mode 0700, the judge's) before any student code runs; the copy is
made read-only and hashed, and the judges grade that copy.  A classmate's
code that rewrites other students' folders during the batch changes nothing
that is graded or cached.

Only what a submission is made of is copied: the regular `.py` and `.ipynb`
files at the top of the student's exercise folder (or the notebook itself),
each up to MAX_FILE_BYTES.  Symbolic links are never followed (one could point
at a classmate's file, or at anything the judge can read).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError

MAX_FILE_BYTES = 20 * 1024 * 1024    # a notebook with its outputs may be large; a dataset is not a submission
SNAPSHOT_SUFFIXES = (".py", ".ipynb")


class SnapshotError(GraderError):
    """A submission that cannot be copied (unreadable, too large...)."""


@dataclass(frozen=True)
class Snapshot:
    path: Path           # the folder (or notebook) to grade, inside the judge's folder
    digest: str          # sha256 over the copied files' names and bytes
    skipped: tuple[str, ...] = ()   # files left out, with why


def _read_regular(path: Path) -> bytes:
    """The bytes of a regular file, never through a symbolic link."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise SnapshotError(f"cannot read {path.name}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SnapshotError(f"{path.name} is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise SnapshotError(f"{path.name} is {info.st_size // (1024 * 1024)} MiB, over the "
                                f"{MAX_FILE_BYTES // (1024 * 1024)} MiB a submission file may have")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _members(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    return sorted(p for p in source.iterdir() if p.suffix in SNAPSHOT_SUFFIXES)


def take(source: Path, dest: Path) -> Snapshot:
    """Copy the submission at `source` into the new folder `dest`, read-only; hash the copy."""
    dest.mkdir(parents=True)
    digest = hashlib.sha256()
    skipped = []
    for member in _members(source):
        if member.is_symlink():
            skipped.append(f"{member.name} (a symbolic link)")
            continue
        if member.is_dir():
            continue
        data = _read_regular(member)
        target = dest / member.name
        target.write_bytes(data)
        target.chmod(0o444)
        digest.update(member.name.encode() + b"\0" + hashlib.sha256(data).digest())
    dest.chmod(0o555)
    graded = dest / source.name if source.is_file() else dest
    return Snapshot(graded, digest.hexdigest(), tuple(skipped))


class SnapshotFolder:
    """The judge's temporary folder holding every snapshot of one batch."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="attn-grade-batch-"))   # mode 0700
        self._count = 0

    def take(self, source: Path) -> Snapshot:
        self._count += 1
        return take(source, self.root / f"{self._count:05d}")

    def close(self) -> None:
        if not self.root.exists():
            return
        for folder, dirs, _ in os.walk(self.root):
            for name in dirs:
                os.chmod(os.path.join(folder, name), 0o700)   # read-only folders cannot be emptied
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "SnapshotFolder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
