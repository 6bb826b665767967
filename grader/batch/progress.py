"""The batch's progress: a rich bar on a terminal, one line per submission otherwise."""

from __future__ import annotations

from rich.markup import escape

from grader.render.points import points_text
from grader.render.sanitize import one_line
from grader.batch.gradebook import Row


class ProgressView:
    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.live = self.console.is_terminal
        self.progress = None
        self.task = None
        self.done = 0
        self.total = 0

    def __call__(self, event: str, **info) -> None:
        if event == "start":
            self.total, self.done = info["total"], info["done"]
            if self.live:
                from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                           TimeElapsedColumn, TimeRemainingColumn)

                self.progress = Progress(TextColumn("[bold]grading"), BarColumn(), MofNCompleteColumn(),
                                         TimeElapsedColumn(), TimeRemainingColumn(),
                                         TextColumn("{task.description}"), console=self.console)
                self.progress.start()
                self.task = self.progress.add_task("", total=self.total, completed=self.done)
            elif info["done"]:
                self.console.print(f"{info['done']} of {self.total} submissions already graded "
                                   "(cached, empty or unreadable)", highlight=False)
        elif event == "row":
            row: Row = info["row"]
            self.done += 1
            total = "-" if row.total is None else points_text(row.total)
            text = f"{one_line(row.student)}: {total}/{points_text(row.max_total)} ({row.status.value})"
            if self.progress is not None:
                self.progress.update(self.task, advance=1, description=escape(text))  # no markup
            else:
                self.console.print(f"[{self.done}/{self.total}] {text}", highlight=False, markup=False)
        elif event == "warning":
            self.console.print(f"warning: {one_line(info['message'])}", highlight=False, markup=False)
        elif event == "done" and self.progress is not None:
            self.progress.stop()
