"""The scorecard a student reads in the terminal.

Text from a submission (messages, tracebacks, printed output, paths) goes
through `sanitize.clean` into rich `Text` objects, never into markup
strings, and only inside bordered panels: every line of it starts with the
panel's border, so no wrapped line can start with a workflow command.
"""

from __future__ import annotations

from rich import box
from rich.columns import Columns
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from grader.render.grouping import (
    MAX_EXAMPLE_LINES,
    MAX_MESSAGE_LINES,
    MAX_TRACEBACK_LINES,
    FailureGroup,
    FailureView,
    error_kind,
    failure_view,
    summary,
    traceback_body,
    shorten,
)
from grader.render import tensors
from grader.render.options import DEFAULT, RenderOptions
from grader.render.tensors import Grid, shade
from grader.render.plain import example_label
from grader.render.points import score_text
from grader.render.sanitize import clean, one_line
from grader.results import ExerciseResult, Report, Status, TestResult
from grader.sandbox import isolation

MAX_OUTPUT_CHARS = 1200
SIDE_BY_SIDE_WIDTH = 72     # got and expected side by side when they fit an 80-column panel

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


def scorecard_table(report: Report, options: RenderOptions = DEFAULT) -> Table:
    rerun = options.rerun(report.seed, [ex.number for ex in report.exercises])
    table = Table(title=Text(f"attn-grade · {one_line(report.submission)}", no_wrap=True,
                             overflow="ellipsis"),
                  box=box.ROUNDED, title_justify="left",
                  caption=Text(f"seed {report.seed} (reproduce with {rerun}) · "
                               f"device {one_line(report.device)} · {report.duration:.1f} s · "
                               f"--dependencies {one_line(report.dependencies)}"
                               + (f"\n{isolation.describe(report.sandbox)}" if report.sandbox else "")),
                  caption_justify="left")
    table.add_column("#", justify="right")
    table.add_column("exercise")
    table.add_column("points", justify="right")
    table.add_column("tests", justify="right")
    table.add_column("time", justify="right")
    table.add_column("status")
    for ex in report.exercises:
        table.add_row(str(ex.number), Text(one_line(ex.title)), score_text(ex.points, ex.max_points),
                      f"{ex.passed_count}/{len(ex.tests)}", f"{ex.duration:.1f}s", status_text(ex.status))
    table.add_section()
    table.add_row("", Text("total", style="bold"),
                  Text(score_text(report.total, report.max_total), style="bold"), "", "", "")
    return table


def _shortened(text: str, limit: int, options: RenderOptions, *, tail: bool = False,
               style: str = "") -> Text:
    shown, left_out = shorten(clean(text), None if options.details else limit, tail=tail)
    out = Text(style=style)
    if left_out and tail:
        out.append(f"… {left_out} earlier lines ({options.details_flag} shows them)\n", style="dim")
    out.append(shown)
    if left_out and not tail:
        out.append(f"\n… {left_out} more lines ({options.details_flag} shows them)", style="dim")
    return out


def _heat_style(x: float | None) -> str:
    """A background from dark (0) to bright (1) for attention weights."""
    if x is None or x != x:
        return "on red"
    level = int(232 + round(min(max(x, 0.0), 1.0) * 13))      # xterm greys 232..245
    return f"on color({level})"


def grid_text(g: Grid, wrong: list[list[bool]] | None = None, *, heat: bool = False) -> Text:
    """A tensor as a small grid: wrong cells in bold red, weights as a heatmap
    (× where a mask input hides the key), masked cells of a bool mask as ■."""
    text = Text(one_line(g.header), style="bold")   # a plain input may be a student object's repr
    if g.scalar or not g.rows:
        return text
    width = max(len(cell) for row in g.rows for cell in row)
    for r, row in enumerate(g.rows):
        text.append("\n  ")
        for c, cell in enumerate(row):
            bad = bool(wrong and r < len(wrong) and c < len(wrong[r]) and wrong[r][c])
            if heat:
                x = g.numbers[r][c]
                hidden = bool(g.masked and g.masked[r][c])
                text.append("×" if hidden else shade(x), style="dim" if hidden else _heat_style(x))
            style = "bold red" if bad else ("yellow" if g.is_mask and cell == "■" else "")
            text.append(cell.rjust(width) + ("*" if bad else " "), style=style)
            text.append(" ")
    if g.cut:
        text.append("\n  …", style="dim")
    return text


def counterexample_parts(test: TestResult, options: RenderOptions = DEFAULT) -> list:
    """The failing case itself: inputs, then got next to expected."""
    case = tensors.shown(test.counterexample, details=options.details)
    if case is None:
        return []
    parts: list = [Text(f"the failing case: {one_line(case.call)}" if case.call else "the failing case:",
                        style="bold cyan")]
    drawn = [grid_text(g) for g in case.inputs if g.rows and not g.scalar]
    for g in case.inputs:              # one-line inputs (sizes, weights without values) first
        if not g.rows or g.scalar:
            parts.append(grid_text(g))
    if drawn:                          # the tensors side by side, as many as the width allows
        parts.append(Columns(drawn, padding=(0, 4)))
    for what, got, expected, wrong in case.pairs:
        heat = tensors.is_weights(what, expected)
        parts.append(Text(f"{one_line(what)}:", style="bold"))
        if got.width() + expected.width() + 4 <= SIDE_BY_SIDE_WIDTH:
            side = Table.grid(padding=(0, 4))
            side.add_row(grid_text(got, wrong, heat=heat), grid_text(expected, heat=heat))
            parts.append(side)
        else:
            parts += [grid_text(got, wrong, heat=heat), grid_text(expected, heat=heat)]
        if any(any(row) for row in wrong):
            parts.append(Text("* differs from the expected value beyond the tolerance", style="dim"))
    return parts


def group_details(ex: ExerciseResult, group: FailureGroup, options: RenderOptions = DEFAULT,
                  seed: int | None = None) -> Panel:
    """One panel for a group of tests failing the same way: the cause, the
    properties it was seen in, and one example in full."""
    test = group.first
    parts: list = []
    many = len(group.tests) > 1
    where = f" ({error_kind(test)} at {clean(group.raised_at)})" if group.raised_at else ""
    if many and group.by_cause:
        parts.append(Text(f"likely cause: {clean(group.cause)}", style="bold yellow"))
        parts.append(Text(f"seen in {len(group.tests)} properties{where}: {', '.join(group.names)}"
                          f" — one of them in full below", style="yellow"))
    elif many:
        parts.append(Text(f"the same {test.status.value}{where} in {len(group.tests)} properties: "
                          f"{', '.join(group.names)}", style="yellow"))
    if test.description:
        parts.append(Text(f"property ({test.name}): {clean(test.description)}" if many
                          else f"property: {clean(test.description)}", style="italic"))
    if test.message:
        parts.append(_shortened(test.message, MAX_MESSAGE_LINES, options))
    case = counterexample_parts(test, options)
    parts += case
    if test.example and (options.details or not case):
        parts.append(Text(f"{example_label(test)}:\n", style="cyan")
                     + _shortened(test.example, MAX_EXAMPLE_LINES, options, style="cyan"))
    if traceback_body(test):
        parts.append(_shortened(traceback_body(test), MAX_TRACEBACK_LINES, options, tail=True, style="dim"))
    if test.hint and not (many and group.by_cause):
        parts.append(Text(f"hint: {clean(test.hint)}", style="yellow"))
    if test.repro and seed is not None:
        parts.append(Text(f"reproduce it in your own code: {options.repro_call(ex.number, test.name, seed)}",
                          style="cyan"))
    style, label = STYLE[test.status]
    subject = f"{len(group.tests)} properties" if many else one_line(test.name)
    return Panel(Group(*parts), title=Text(f"{ex.number}·{ex.slug} › {subject} [{label}]"),
                 title_align="left", border_style=style, expand=True)


def test_details(ex: ExerciseResult, test: TestResult, options: RenderOptions = DEFAULT) -> Panel:
    """One failing test in its own panel."""
    return group_details(ex, FailureGroup([test]), options)


def brief_panel(ex: ExerciseResult, view: FailureView) -> Panel:
    """The exercise's other failures, a line or two each: the properties, what
    differs, where the code raised, and the hint when it is new."""
    text = Text()
    for group in view.brief:
        test = group.first
        if text:
            text.append("\n")
        text.append(f"{STYLE[test.status][1][0]} {', '.join(group.names)}", style="bold")
        text.append(f": {clean(summary(test))}")
        if group.raised_at:
            text.append(f" (at {clean(group.raised_at)})", style="dim")
        if view.new_hint(group):
            text.append(f"\n  hint: {clean(view.new_hint(group))}", style="yellow")
    count = view.brief_count
    return Panel(text, title=Text(f"{ex.number}·{ex.slug} › also failing ({count} "
                                  f"{'property' if count == 1 else 'properties'})"),
                 title_align="left", border_style="red", expand=True)


def failures(report: Report, options: RenderOptions = DEFAULT) -> list:
    blocks: list = []
    for ex in report.exercises:
        bad = [t for t in ex.tests if t.status is not Status.PASSED]
        if not bad:   # a passing exercise may still carry a note (how it fares on your own files)
            blocks.extend(Text(f"{ex.number}·{ex.slug} note: {note}", style="yellow")
                          for note in ex.notes)
            continue
        if all(t.status is Status.NOT_IMPLEMENTED for t in bad):
            todo = list(dict.fromkeys(clean(t.message) for t in bad))
            blocks.append(Panel(Text("; ".join(todo), style="yellow"),
                                title=Text(f"{ex.number}·{ex.slug}: not implemented yet"),
                                title_align="left", border_style="yellow", expand=True))
            continue
        view = failure_view(ex.tests, details=options.details)
        for group in view.full:
            blocks.append(group_details(ex, group, options, report.seed))
        if view.brief:
            blocks.append(brief_panel(ex, view))
        if view.brief or view.hidden:
            more = f"… and {view.hidden} more failing tests in exercise {ex.number}; " if view.hidden else ""
            blocks.append(Text(f"{more}{options.details_call(ex.number, report.seed)} shows every "
                               "failure in full", style="dim"))
        if ex.notes:
            blocks.append(Panel(Text("\n".join(clean(n) for n in ex.notes), style="yellow"),
                                title=Text(f"{ex.number}·{ex.slug}: note"), title_align="left",
                                border_style="yellow", expand=True))
        if ex.output.strip():
            blocks.append(Panel(Text(clean(ex.output.strip()[-MAX_OUTPUT_CHARS:]), style="dim"),
                                title=Text("output of your code (last lines)"), title_align="left",
                                border_style="dim", expand=True))
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
                    f"{one_line(t.get('device', ''))} {one_line(amp)} · ")
        text.append(one_line(t.get("sparkline", "")), style="cyan")
        lines.append(text)
    return lines


def print_report(report: Report, console: Console | None = None,
                 options: RenderOptions = DEFAULT) -> None:
    console = console or Console()
    for block in failures(report, options):
        console.print(block)
    console.print(scorecard_table(report, options))
    for line in training_lines(report):
        console.print(line)


def render(report: Report, options: RenderOptions = DEFAULT, width: int = 110) -> str:
    """The scorecard as plain text (for --output FILE)."""
    import io

    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    print_report(report, console, options)
    return console.export_text()
