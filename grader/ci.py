"""`attn-grade render RESULTS.json`: show saved results in another format.

Grading runs once (`--format json --output results.json`); every other view
is rendered from that file without running anything again: the markdown
scorecard for a job summary or a pull request comment, the `github`
annotations, JUnit XML, Gradescope's results.json. Reading the file never
imports or runs student code, so it is safe anywhere.

A batch gradebook JSON (`attn-grade batch`) holds one Report per student:
`--student NAME` renders one of them, `--output-dir DIR` writes every
student's into DIR (named by the student's folder).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from grader.errors import GraderError
from grader.results import Report

SUFFIX = {"markdown": ".md", "json": ".json", "junit": ".xml", "gradescope": ".json"}
WRITE_HINT = "write one with: attn-grade all --format json --output FILE (or attn-grade batch)"


def load_results(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GraderError(f"results file not found: {path}", hint=WRITE_HINT) from None
    except (OSError, ValueError) as exc:
        raise GraderError(f"{path} is not an attn-grade JSON results file ({exc})", hint=WRITE_HINT) from None


def report_from_data(path: Path, data) -> Report:
    from grader.results import report_from_dict

    try:
        return report_from_dict(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise GraderError(f"{path} is not an attn-grade JSON results file ({exc})", hint=WRITE_HINT) from None


def load_report(path: Path) -> Report:
    return report_from_data(path, load_results(path))


def student_reports(path: Path, data: dict) -> dict[str, Report | None]:
    """{student: Report, or None when nothing was graded} of a batch gradebook JSON."""
    from grader.batch.gradebook import Gradebook

    try:
        book = Gradebook.from_dict(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise GraderError(f"{path} is not an attn-grade gradebook ({exc})") from None
    return {row.student: row.report for row in book.sorted_rows()}


def is_gradebook(data) -> bool:
    from grader.batch.gradebook import GRADEBOOK_KIND

    return isinstance(data, dict) and data.get("kind") == GRADEBOOK_KIND


def render_gradebook(path: Path, data: dict, fmt: str, output: Path | None, student: str | None,
                     output_dir: Path | None) -> None:
    from grader.render import emit, render_text

    reports = student_reports(path, data)
    if student is not None:
        if student not in reports:
            raise GraderError(f"no student {student!r} in {path}",
                              hint="students: " + ", ".join(list(reports)[:10]))
        if reports[student] is None:
            raise GraderError(f"{student} has no report in {path} (nothing was graded)")
        emit(reports[student], fmt, output)
        return
    if output_dir is None:
        raise GraderError(f"{path} is a batch gradebook with {len(reports)} students",
                          hint="pass --student NAME for one, or --output-dir DIR for all")
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, report in reports.items():
        if report is not None:
            target = output_dir / f"{name}{SUFFIX.get(fmt, '.txt')}"
            target.write_text(render_text(report, fmt), encoding="utf-8")
    click.echo(f"wrote {sum(r is not None for r in reports.values())} reports to {output_dir}", err=True)

