"""`attn-grade watch [N]`: regrade on every save.

One judge process stays up, so pytest, hypothesis, torch and the hidden
tests are imported once, and the zygote (grader/sandbox/spawn.py) stays
warm: each regrade only forks a fresh worker.  The folder is polled (no
file-watcher dependency): a change of an exercise file's size, time or
content starts a regrade of exercise N, or, without N, of the exercise
whose file changed.  A save seen mid-write is graded once the files have
stopped changing for one poll.

Each save is graded twice: first a quick pass (QUICK_EXAMPLES hypothesis
examples per property, after the seed-stable first cases, and no run on the
student's own earlier files), whose scorecard is on screen a fraction of a
second after the save, then the full pass, whose scorecard replaces it.  The
quick pass is only ever shown as such; a save during it skips the full pass
of the older version.

The loop is a plain function with its clock injected (`sleep`,
`iterations`), so a test drives it by editing a file between polls.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from grader import registry
from grader.errors import GraderError
from grader.registry import Exercise
from grader.results import Report
from grader.submission import module_for_name, resolve_path

# How often the folder is looked at: a stat of a dozen files, cheap at 20 Hz.
POLL_SECONDS = 0.05
# Examples per property of the quick pass: the harness's fixture tests grade
# every catalogued mistake with this many (tests/hidden/test_fixtures.py).
QUICK_EXAMPLES = 6

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
    quick: bool = False              # the quick pass: the full one follows


# grade(folder, exercise, quick) -> the report of one pass
Grade = Callable[[Path, Exercise, bool], Report]


class CtrlC:
    """While active, Ctrl-C (SIGINT) both raises KeyboardInterrupt and sets
    `pressed`.  Python swallows an exception raised inside a weakref callback
    or a `__del__` (it only prints it), and a garbage collection during a
    grading runs those: the loop then stops at its next check of `pressed`
    instead of watching on."""

    def __init__(self) -> None:
        self.pressed = False
        self._previous = None

    def _on_sigint(self, signum, frame) -> None:
        self.pressed = True
        raise KeyboardInterrupt

    def __enter__(self) -> "CtrlC":
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._previous)


def watch(submission, exercise: Exercise | None, grade: Grade,
          show: Callable[[WatchEvent], None], *, quick: bool = True, poll: float = POLL_SECONDS,
          sleep: Callable[[float], None] = time.sleep, iterations: int | None = None,
          stopped: Callable[[], bool] = lambda: False) -> int:
    """Grade `exercise` now (when given), then again after each change of the
    submission's exercise files, until KeyboardInterrupt (Ctrl-C), `stopped()`
    or `iterations` polls.  With `quick`, each grading is a quick pass then,
    unless the files changed meanwhile, the full one.  Returns how many
    gradings (full or quick-only) ran."""
    folder = resolve_path(submission)
    graded = 0
    seen = snapshot(folder)

    def run(ex: Exercise, changed: tuple[str, ...] = ()) -> None:
        nonlocal graded
        graded += 1
        for fast in ((True, False) if quick else (False,)):
            if stopped():
                return
            if fast is False and quick and snapshot(folder) != seen:
                return                       # saved again meanwhile: grade the new version
            try:
                report = grade(folder, ex, fast)
            except GraderError as exc:       # e.g. the folder was emptied: said once
                show(WatchEvent(ex, error=exc.message, changed=changed))
                return
            show(WatchEvent(ex, report, changed=changed, quick=fast))

    try:
        if exercise is not None:
            run(exercise)
        polls = 0
        while (iterations is None or polls < iterations) and not stopped():
            now = snapshot(folder)
            if now == seen:
                sleep(poll)
                polls += 1
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
