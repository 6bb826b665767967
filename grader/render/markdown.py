"""The scorecard as GitHub-flavoured Markdown: job summaries and PR comments.

The same facts as the rich scorecard (grader/render/rich.py), in the same
order: one table row per exercise with its points (formatted by the same
function, so both views always show the same numbers), then each failing
property with its smallest failing input, the max error, the hint, and the
traceback trimmed to the student's file.

Everything that comes from a submission (messages, tracebacks, printed
output) is untrusted text: it goes into code blocks whose fence is longer
than any backtick run inside, or into table cells with `|` and newlines
escaped, so it cannot break the layout (GitHub sanitises the HTML itself).
"""

from __future__ import annotations

import re

from grader.render.rich import _points as points_text
from grader.render.text import clean
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

MAX_FAILURES_PER_EXERCISE = 6      # as the rich scorecard
MAX_BLOCK_CHARS = 1500             # per message / traceback / example block
MAX_OUTPUT_CHARS = 1200            # tail of the student's printed output, as rich

_MAX_ERROR = re.compile(r"max abs error ([0-9.eE+\-]+|nan|inf)")


def max_error(message: str) -> str:
    """The max abs error a failed comparison reports (checks.assert_close), or ''."""
    found = _MAX_ERROR.search(message)
    return found.group(1) if found else ""


def cell(text: str) -> str:
    """Text safe inside one table cell."""
    return (clean(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ")
            .replace("\n", " ").strip())


def inline(text: str) -> str:
    """Untrusted text on one line, outside a table (no HTML, no mentions firing)."""
    text = " ".join(clean(text).split())
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("@", "@\u200b")


def code_block(text: str, limit: int = MAX_BLOCK_CHARS, *, tail: bool = False) -> str:
    text = clean(text).rstrip()
    if len(text) > limit:
        text = ("…" + text[-limit:]) if tail else (text[:limit] + "…")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def scorecard(report: Report) -> list[str]:
    lines = [
        f"## attn-grade · {points_text(report.total)}/{points_text(report.max_total)} points",
        "",
        "| # | exercise | points | tests | time | status |",
        "|--:|:--|--:|--:|--:|:--|",
    ]
    for ex in report.exercises:
        lines.append(f"| {ex.number} | {cell(ex.title)} | {points_text(ex.points)}/{points_text(ex.max_points)} "
                     f"| {ex.passed_count}/{len(ex.tests)} | {ex.duration:.1f}s | {LABEL[ex.status]} |")
    lines.append(f"| | **total** | **{points_text(report.total)}/{points_text(report.max_total)}** | | | |")
    lines += ["", f"seed {report.seed} (reproduce with `--seed {report.seed}`) · device "
                  f"{cell(report.device)} · {report.duration:.1f} s"
                  + (f" · attn-grade {cell(report.grader_version)}" if report.grader_version else ""),
              *(["", cell(isolation.describe(report.sandbox))] if report.sandbox else [])]
    return lines


def test_details(ex: ExerciseResult, tests: list[TestResult]) -> list[str]:
    """One failure block; `tests` fail the same way (same status, message,
    traceback and hint): the first is shown, the others are named."""
    test = tests[0]
    lines = [f"**{LABEL[test.status]} · {ex.number} · {ex.slug} › `{test.name}`**", ""]
    if len(tests) > 1:
        others = ", ".join(f"`{t.name}`" for t in tests[1:])
        lines += [f"*also failing the same way:* {others}", ""]
    if test.description:
        lines += [f"*property:* {inline(test.description)}", ""]
    facts = []
    error = max_error(test.message)
    if error:
        facts.append(f"**max error:** {error}")
    lost = sum(t.max_points - t.points for t in tests)
    facts.append(f"**points lost:** {points_text(lost)}")
    lines += [" · ".join(facts), ""]
    if test.message:
        lines += [code_block(test.message), ""]
    if test.example:
        lines += ["smallest failing input:", "", code_block(test.example), ""]
    if test.traceback:
        lines += ["traceback (your code):", "", code_block(test.traceback, tail=True), ""]
    if test.hint:
        lines += [f"💡 **hint:** {inline(test.hint)}", ""]
    return lines


def same_failures(tests: list[TestResult]) -> list[list[TestResult]]:
    """Failing tests grouped by how they fail, in order of first appearance."""
    groups: dict[tuple, list[TestResult]] = {}
    for test in tests:
        groups.setdefault((test.status, test.message, test.traceback, test.hint), []).append(test)
    return list(groups.values())


def failures(report: Report, max_per_exercise: int = MAX_FAILURES_PER_EXERCISE) -> list[str]:
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
        lines += [f"#### {ex.number} · {cell(ex.title)} — {points_text(ex.points)}/"
                  f"{points_text(ex.max_points)} · {LABEL[ex.status]}", ""]
        groups = same_failures(bad)
        for group in groups[:max_per_exercise]:
            lines += test_details(ex, group)
        hidden = sum(len(g) for g in groups[max_per_exercise:])
        if hidden:
            lines += [f"… and {hidden} more failing tests in exercise {ex.number} "
                      "(see the JSON results).", ""]
        for note in ex.notes:
            lines += [f"> **note:** {inline(note)}", ""]
        if ex.output.strip():
            lines += ["<details><summary>output of your code (last lines)</summary>", "",
                      code_block(ex.output.strip(), MAX_OUTPUT_CHARS, tail=True), "", "</details>", ""]
    if lines:
        lines = ["### What to fix", ""] + lines
    return lines


def render(report: Report) -> str:
    lines = scorecard(report)
    details = failures(report)
    if details:
        lines += [""] + details
    return "\n".join(lines).rstrip() + "\n"
