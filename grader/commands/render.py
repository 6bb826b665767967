"""`attn-grade render RESULTS`: show saved results (one report or a batch
gradebook) in another format, without running anything (grader/ci.py)."""

from __future__ import annotations

from pathlib import Path

import click

from grader import ci, render
from grader.commands.options import use
from grader.errors import GraderError, handle_errors


@click.command("render")
@click.argument("results", type=click.Path(path_type=Path))
@use("format", "output", "details", format="markdown")
@click.option("--student", default=None,
              help="For a batch gradebook: the student (folder name) whose report to render.")
@click.option("--output-dir", type=click.Path(path_type=Path), default=None,
              help="For a batch gradebook: write every student's report here, named by folder.")
@handle_errors
def render_command(results: Path, fmt: str, output: Path | None, details: bool,
                   student: str | None, output_dir: Path | None) -> None:
    """Render a saved JSON RESULTS file (from --format json, or a batch gradebook) in another format."""
    data = ci.load_results(results)
    if ci.is_gradebook(data):
        ci.render_gradebook(results, data, fmt, output, student, output_dir)
    elif student is not None or output_dir is not None:
        raise GraderError(f"{results} holds one report; --student and --output-dir are for a "
                          "batch gradebook")
    else:
        render.emit(ci.report_from_data(results, data), fmt, output, details=details)
