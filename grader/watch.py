"""`attn-grade watch [N]`: regrade on every save.

One judge process stays up, so pytest, hypothesis, torch and the hidden
tests are imported once, and the zygote (grader/sandbox/spawn.py) stays
warm: each regrade only forks a fresh worker.  The folder is polled (no
file-watcher dependency): a change of an exercise file's size, time or
content starts a regrade of exercise N, or, without N, of the exercise
whose file changed.  A save seen mid-write is graded once the files have
stopped changing for one poll.

The loop is a plain function with its clock injected (`sleep`,
`iterations`), so a test drives it by editing a file between polls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from grader import registry
from grader.errors import GraderError
from grader.registry import Exercise
from grader.results import Report
from grader.submission import module_for_name, resolve_path

POLL_SECONDS = 0.3

Snapshot = dict[str, tuple[int, int]]


def snapshot(folder: Path) -> Snapshot:
    """{file name: (size, mtime_ns)} of the exercise files in `folder`."""
    found: Snapshot = {}
    root = folder if folder.is_dir() else folder.parent
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if path.suffix in (".py", ".ipynb") and module_for_name(path.stem) is not None:
            try:
                stat = path.stat()
            except OSError:
                continue
            found[path.name] = (stat.st_size, stat.st_mtime_ns)
    return found


def changed_files(before: Snapshot, after: Snapshot) -> list[str]:
    return sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))


def exercise_of(names: list[str]) -> Exercise | None:
    """The exercise whose file changed (the lowest, when several did)."""
    numbers = sorted({registry.by_module(module_for_name(Path(n).stem)).number for n in names
                      if module_for_name(Path(n).stem) is not None})
    return registry.get(numbers[0]) if numbers else None


@dataclass
class WatchEvent:
    exercise: Exercise
    report: Report | None = None
    error: str = ""                  # a GraderError's message (e.g. the folder was emptied)
    changed: tuple[str, ...] = ()


def watch(submission, exercise: Exercise | None, grade: Callable[[Path, Exercise], Report],
          show: Callable[[WatchEvent], None], *, poll: float = POLL_SECONDS,
          sleep: Callable[[float], None] = time.sleep, iterations: int | None = None) -> int:
    """Grade `exercise` now (when given), then again after each change of the
    submission's exercise files, until KeyboardInterrupt (Ctrl-C) or
    `iterations` polls.  Returns how many gradings ran."""
    folder = resolve_path(submission)
    graded = 0

    def run(ex: Exercise, changed: tuple[str, ...] = ()) -> None:
        nonlocal graded
        graded += 1
        try:
            show(WatchEvent(ex, grade(folder, ex), changed=changed))
        except GraderError as exc:
            show(WatchEvent(ex, error=exc.message, changed=changed))

    try:
        if exercise is not None:
            run(exercise)
        seen = snapshot(folder)
        polls = 0
        while iterations is None or polls < iterations:
            sleep(poll)
            polls += 1
            now = snapshot(folder)
            if now == seen:
                continue
            while True:                    # wait until the editor has finished writing
                sleep(poll)
                polls += 1
                settled = snapshot(folder)
                if settled == now:
                    break
                now = settled
            changed = tuple(changed_files(seen, now))
            seen = now
            target = exercise or exercise_of(list(changed))
            if target is not None:
                run(target, changed)
    except KeyboardInterrupt:
        pass
    return graded
