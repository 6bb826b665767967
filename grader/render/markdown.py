"""The scorecard as GitHub-flavoured Markdown: job summaries and PR comments.

The same facts as the rich scorecard (grader/render/rich.py), in the same
order: one table row per exercise with its points (formatted by the same
function, so both views always show the same numbers), then each failing
property with its smallest failing input, the max error, the hint, and the
traceback trimmed to the student's file.

Everything that is not the grader's own constant text (messages,
tracebacks, printed output, titles, notes) is untrusted: it goes through
grader/render/sanitize.py into code blocks whose fence is longer than any
backtick run inside, or into escaped inline text and table cells, so it can
neither break the layout nor add a live link, image, emphasis or HTML.
"""

from __future__ import annotations

import re

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
from grader.render.plain import example_label
from grader.render.points import points_text, score_text
from grader.render.sanitize import md_cell, md_code_block, md_code_span, md_inline
from grader.results import ExerciseResult, Report, Status, TestResult
from grader.sandbox import isolation

LABEL = {
    Status.PASSED: "✅ passed",
    Status.FAILED: "❌ failed",
    Status.ERROR: "💥 error",
    Status.NOT_IMPLEMENTED: "🚧 not implemented",
    Status.TIMEOUT: "⏱️ timeout",
    Status.CRASHED: "☠️ crashed",
    Status.FORBIDDEN: "⛔ forbidden",
    Status.NOT_RUN: "➖ not run",
}

MAX_BLOCK_CHARS = 1500             # per message / traceback / example block
MAX_OUTPUT_CHARS = 1200            # tail of the student's printed output, as rich

_MAX_ERROR = re.compile(r"max abs error ([0-9.eE+\-]+|nan|inf)")


def max_error(message: str) -> str:
    """The max abs error a failed comparison reports (checks.assert_close), or ''."""
    found = _MAX_ERROR.search(message)
    return found.group(1) if found else ""


def cell(text: str) -> str:
    """Text safe inside one table cell."""
    return md_cell(text)


def inline(text: str) -> str:
    """Untrusted text on one line, outside a table: inert Markdown."""
    return md_inline(text)


def code_block(text: str, limit: int = MAX_BLOCK_CHARS, *, tail: bool = False) -> str:
    return md_code_block(text, limit, tail=tail)


def scorecard(report: Report, options: RenderOptions = DEFAULT) -> list[str]:
    lines = [
        f"## attn-grade · {score_text(report.total, report.max_total)} points",
        "",
        "| # | exercise | points | tests | time | status |",
        "|--:|:--|--:|--:|--:|:--|",
    ]
    for ex in report.exercises:
        lines.append(f"| {ex.number} | {cell(ex.title)} | {score_text(ex.points, ex.max_points)} "
                     f"| {ex.passed_count}/{len(ex.tests)} | {ex.duration:.1f}s | {LABEL[ex.status]} |")
    lines.append(f"| | **total** | **{score_text(report.total, report.max_total)}** | | | |")
    numbers = [ex.number for ex in report.exercises]
    lines += ["", f"seed {report.seed} (reproduce with {md_code_span(options.rerun(report.seed, numbers))}) "
                  f"· device {cell(report.device)} · {report.duration:.1f} s"
                  + (f" · attn-grade {cell(report.grader_version)}" if report.grader_version else ""),
              *(["", cell(isolation.describe(report.sandbox))] if report.sandbox else [])]
    return lines


def _shortened_block(text: str, limit: int, options: RenderOptions, *, tail: bool = False) -> list[str]:
    shown, left_out = shorten(text, None if options.details else limit, tail=tail)
    lines = [code_block(shown, 10**9 if options.details else MAX_BLOCK_CHARS, tail=tail)]
    if left_out:
        where = "earlier" if tail else "more"
        lines.append(f"*… {left_out} {where} lines: {md_code_span(options.details_flag)} shows them*")
    return lines + [""]


def _grid_lines(g: tensors.Grid) -> list[str]:
    """A tensor as monospace lines (for a code block)."""
    lines = [g.header]
    if g.rows:
        width = max(len(c) for row in g.rows for c in row)
        lines += ["  " + "  ".join(c.rjust(width) for c in row) for row in g.rows]
        if g.cut:
            lines.append("  …")
    return lines


def _pair_table(what: str, got: tensors.Grid, expected: tensors.Grid, wrong: list[list[bool]]) -> list[str]:
    """Got and expected, row by row, in one table: wrong entries in bold;
    attention weights with a shade (░▒▓█) as a small heatmap, × where a
    mask hides the key."""
    heat = tensors.is_weights(what, expected)
    columns = max((len(r) for r in got.rows + expected.rows), default=0)
    if not columns:
        return []

    def cells(g: tensors.Grid, r: int, flags=None) -> list[str]:
        row = g.rows[r] if r < len(g.rows) else []
        out = []
        for c in range(columns):
            if c >= len(row):
                out.append("")
                continue
            hidden = bool(heat and g.masked and g.masked[r][c])
            text = (("×" if hidden else tensors.shade(g.numbers[r][c])) + " " if heat else "") + row[c]
            bad = bool(flags and r < len(flags) and c < len(flags[r]) and flags[r][c])
            out.append(f"**{text}**" if bad else text)
        return out

    lines = [f"*{inline(what)}* — got {inline(got.shape_text)} {inline(got.dtype)}, expected "
             f"{inline(expected.shape_text)} {inline(expected.dtype)}"
             + (f" (slice {inline(got.where)})" if got.where else "") + ", wrong entries in **bold**:", "",
             "| | " + " | ".join(str(c) for c in range(columns)) + " |",
             "|:--|" + "--:|" * columns]
    for r in range(max(len(got.rows), len(expected.rows))):
        lines.append(f"| got {r} | " + " | ".join(cells(got, r, wrong)) + " |")
        lines.append(f"| expected {r} | " + " | ".join(cells(expected, r)) + " |")
    return lines + [""]


def counterexample_lines(test: TestResult, options: RenderOptions = DEFAULT) -> list[str]:
    case = tensors.shown(test.counterexample, details=options.details)
    if case is None:
        return []
    lines = ["**the failing case:** " + (md_code_span(case.call) if case.call else ""), ""]
    if case.inputs:
        block = [line for g in case.inputs for line in _grid_lines(g)]
        lines += [md_code_block("\n".join(block)), ""]
    for what, got, expected, wrong in case.pairs:
        lines += _pair_table(what, got, expected, wrong)
    return lines


def group_details(ex: ExerciseResult, group: FailureGroup, options: RenderOptions = DEFAULT,
                  seed: int | None = None) -> list[str]:
    """One failure block for a group of tests failing the same way: the
    cause, the properties it was seen in, and the first one in full."""
    test = group.first
    many = len(group.tests) > 1
    subject = f"{len(group.tests)} properties" if many else md_code_span(test.name)
    lines = [f"**{LABEL[test.status]} · {ex.number} · {ex.slug} › {subject}**", ""]
    where = f" ({error_kind(test)} at {md_code_span(group.raised_at)})" if group.raised_at else ""
    if many and group.by_cause:
        lines += [f"💡 **likely cause:** {inline(group.cause)}", "",
                  f"*seen in {len(group.tests)} properties{where}:* "
                  + ", ".join(md_code_span(n) for n in group.names) + " — one of them in full below", ""]
    elif many:
        lines += [f"*the same {test.status.value}{where} in {len(group.tests)} properties:* "
                  + ", ".join(md_code_span(n) for n in group.names), ""]
    if test.description:
        label = f"*property* ({md_code_span(test.name)}):" if many else "*property:*"
        lines += [f"{label} {inline(test.description)}", ""]
    facts = []
    error = max_error(test.message)
    if error:
        facts.append(f"**max error:** {inline(error)}")
    facts.append(f"**points lost:** {points_text(group.points_lost)}")
    lines += [" · ".join(facts), ""]
    if test.message:
        lines += _shortened_block(test.message, MAX_MESSAGE_LINES, options)
    case = counterexample_lines(test, options)
    lines += case
    if test.example and (options.details or not case):
        lines += [f"{example_label(test)}:", ""] + _shortened_block(test.example, MAX_EXAMPLE_LINES, options)
    if traceback_body(test):
        lines += ["traceback (your code):", ""] + _shortened_block(traceback_body(test), MAX_TRACEBACK_LINES,
                                                                   options, tail=True)
    if test.hint and not (many and group.by_cause):
        lines += [f"💡 **hint:** {inline(test.hint)}", ""]
    if test.repro and seed is not None:
        lines += [f"🔁 **reproduce it in your own code:** "
                  f"{md_code_span(options.repro_call(ex.number, test.name, seed))}", ""]
    return lines


def test_details(ex: ExerciseResult, test: TestResult, options: RenderOptions = DEFAULT) -> list[str]:
    return group_details(ex, FailureGroup([test]), options)


def brief_lines(view: FailureView) -> list[str]:
    """The exercise's other failures, one bullet each: the properties, what
    differs, where the code raised, and the hint when it is new."""
    lines = []
    for group in view.brief:
        test = group.first
        line = (f"- **{LABEL[test.status]}** " + ", ".join(md_code_span(n) for n in group.names)
                + f": {inline(summary(test))}"
                + (f" (at {md_code_span(group.raised_at)})" if group.raised_at else ""))
        if view.new_hint(group):
            line += f" — 💡 {inline(view.new_hint(group))}"
        lines.append(line)
    count = view.brief_count
    return [f"**also failing** ({count} {'property' if count == 1 else 'properties'}):", "", *lines, ""]


def failures(report: Report, options: RenderOptions = DEFAULT) -> list[str]:
    lines: list[str] = []
    for ex in report.exercises:
        bad = [t for t in ex.tests if t.status is not Status.PASSED]
        if not bad and not ex.notes:
            continue
        if bad and all(t.status is Status.NOT_IMPLEMENTED for t in bad):
            todo = list(dict.fromkeys(t.message for t in bad))
            lines += [f"- {LABEL[Status.NOT_IMPLEMENTED]} · {ex.number} · {ex.slug}: "
                      + "; ".join(inline(m) for m in todo if m), ""]
            continue
        lines += [f"#### {ex.number} · {cell(ex.title)} — {score_text(ex.points, ex.max_points)} "
                  f"· {LABEL[ex.status]}", ""]
        view = failure_view(ex.tests, details=options.details)
        for group in view.full:
            lines += group_details(ex, group, options, report.seed)
        if view.brief:
            lines += brief_lines(view)
        if view.brief or view.hidden:
            more = f"… and {view.hidden} more failing tests in exercise {ex.number}; " if view.hidden else ""
            lines += [f"{more}{md_code_span(options.details_call(ex.number, report.seed))} shows every "
                      "failure in full.", ""]
        for note in ex.notes:
            lines += [f"> **note:** {inline(note)}", ""]
        if ex.output.strip():
            lines += ["<details><summary>output of your code (last lines)</summary>", "",
                      code_block(ex.output.strip(), MAX_OUTPUT_CHARS, tail=True), "", "</details>", ""]
    if lines:
        lines = ["### What to fix", ""] + lines
    return lines


def render(report: Report, options: RenderOptions = DEFAULT) -> str:
    lines = scorecard(report, options)
    details = failures(report, options)
    if details:
        lines += [""] + details
    return "\n".join(lines).rstrip() + "\n"
