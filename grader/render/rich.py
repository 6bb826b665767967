"""The scorecard a student reads in the terminal."""

from __future__ import annotations

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from grader.results import ExerciseResult, Report, Status, TestResult
from grader.sandbox import isolation

STYLE = {
    Status.PASSED: ("green", "✔ passed"),
    Status.FAILED: ("red", "✘ failed"),
    Status.ERROR: ("red", "✘ error"),
    Status.NOT_IMPLEMENTED: ("yellow", "… not implemented"),
    Status.TIMEOUT: ("magenta", "⏱ timeout"),
    Status.CRASHED: ("magenta", "☠ crashed"),
    Status.FORBIDDEN: ("bold red", "⛔ forbidden"),
    Status.NOT_RUN: ("dim", "– not run"),
}


def status_text(status: Status) -> Text:
    style, label = STYLE[status]
    return Text(label, style=style)


def _points(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value)}"


def scorecard_table(report: Report) -> Table:
    table = Table(title=f"attn-grade · {report.submission}", box=box.ROUNDED, title_justify="left",
                  caption=f"seed {report.seed} (reproduce with --seed {report.seed}) · "
                          f"device {report.device} · {report.duration:.1f} s"
                          + (f"\n{isolation.describe(report.sandbox)}" if report.sandbox else ""),
                  caption_justify="left")
    table.add_column("#", justify="right")
    table.add_column("exercise")
    table.add_column("points", justify="right")
    table.add_column("tests", justify="right")
    table.add_column("time", justify="right")
    table.add_column("status")
    for ex in report.exercises:
        table.add_row(str(ex.number), ex.title, f"{_points(ex.points)}/{_points(ex.max_points)}",
                      f"{ex.passed_count}/{len(ex.tests)}", f"{ex.duration:.1f}s", status_text(ex.status))
    table.add_section()
    table.add_row("", Text("total", style="bold"),
                  Text(f"{_points(report.total)}/{_points(report.max_total)}", style="bold"), "", "", "")
    return table


def test_details(ex: ExerciseResult, test: TestResult) -> Panel:
    parts: list = []
    if test.description:
        parts.append(Text(f"property: {test.description}", style="italic"))
    if test.message:
        parts.append(Text(test.message))
    if test.example:
        parts.append(Text("smallest failing input:\n" + test.example, style="cyan"))
    if test.traceback:
        parts.append(Text(test.traceback, style="dim"))
    if test.hint:
        parts.append(Text(f"hint: {test.hint}", style="yellow"))
    style, label = STYLE[test.status]
    return Panel(Group(*parts), title=f"{ex.number}·{ex.slug} › {test.name} [{label}]",
                 title_align="left", border_style=style, expand=True)


def failures(report: Report, max_per_exercise: int = 6) -> list:
    blocks: list = []
    for ex in report.exercises:
        bad = [t for t in ex.tests if t.status is not Status.PASSED]
        if not bad:
            continue
        if all(t.status is Status.NOT_IMPLEMENTED for t in bad):
            todo = list(dict.fromkeys(t.message for t in bad))
            blocks.append(Text(f"{ex.number}·{ex.slug}: not implemented yet — " + "; ".join(todo),
                               style="yellow"))
            continue
        for test in bad[:max_per_exercise]:
            blocks.append(test_details(ex, test))
        if len(bad) > max_per_exercise:
            blocks.append(Text(f"... and {len(bad) - max_per_exercise} more failing tests in "
                               f"exercise {ex.number} (see --format json)", style="dim"))
        for note in ex.notes:
            blocks.append(Text(f"note: {note}", style="yellow"))
        if ex.output.strip():
            blocks.append(Text(f"output of your code (last lines):\n{ex.output.strip()[-1200:]}",
                               style="dim"))
    return blocks


def training_lines(report: Report) -> list[Text]:
    """Exercise 8's timed training check: budget, time, steps, accuracy curve, device."""
    lines = []
    for ex in report.exercises:
        t = (ex.extra or {}).get("training")
        if not t:
            continue
        style = "green" if t.get("passed") else "red"
        amp = {"off": "fp32"}.get(t.get("amp", "off"), t.get("amp", ""))
        text = Text(f"training check ({ex.number}·{ex.slug}): ", style="bold")
        text.append(f"{t.get('accuracy', 0):.1%} held-out token accuracy (target "
                    f"{t.get('target', 0):.0%}) ", style=style)
        text.append(f"after {t.get('steps', 0)} steps in {t.get('time_s', 0):.1f} s of a "
                    f"{t.get('budget_s', 0):.1f} s budget · {t.get('tokens_per_s', 0):,.0f} tokens/s · "
                    f"{t.get('device', '')} {amp} · ")
        text.append(t.get("sparkline", ""), style="cyan")
        lines.append(text)
    return lines


def print_report(report: Report, console: Console | None = None) -> None:
    console = console or Console()
    for block in failures(report):
        console.print(block)
    console.print(scorecard_table(report))
    for line in training_lines(report):
        console.print(line)


def render(report: Report, width: int = 110) -> str:
    """The scorecard as plain text (for --output FILE)."""
    import io

    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    print_report(report, console)
    return console.export_text()
