"""A live progress line on stderr while the hidden tests run."""

from __future__ import annotations

import sys

from grader.results import Status


class ProgressDisplay:
    """Context manager; yields the `progress(event, ...)` callback that
    runner.grade calls, or None when stderr is not a terminal."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.progress = None
        self.task = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), console=Console(stderr=True), transient=True)
        self.progress.__enter__()
        return self.update

    def update(self, event: str, exercise=None, **info) -> None:
        p = self.progress
        if event == "exercise_start":
            self.task = p.add_task(f"exercise {exercise.number} · {exercise.slug}", total=None)
        elif event == "collected" and self.task is not None:
            p.update(self.task, total=info["count"])
        elif event == "test" and self.task is not None:
            p.advance(self.task)
            status = info["status"]
            if status is not Status.PASSED:
                p.update(self.task, description=f"exercise {exercise.number} · {exercise.slug} "
                                                f"({info['name']}: {status.value})")
        elif event == "exercise_done" and self.task is not None:
            p.remove_task(self.task)
            self.task = None

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.__exit__(*exc)
        return False
