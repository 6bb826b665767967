"""Renderers: each turns a `Report` into text.  Nothing else formats output.

To add a format, write `grader/render/<name>.py` with
`render(report, options=DEFAULT) -> str` and add it to RENDERERS.  The
options (grader/render/options.py: `details`, `notebook`) come as keyword
arguments of `render_text` and `emit`.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from grader.render.options import RenderOptions
from grader.results import Report

# format name -> module under grader.render that has `render(report) -> str`
RENDERERS: dict[str, str] = {
    "rich": "rich",
    "json": "json",
    "markdown": "markdown",      # job summaries, pull request comments
    "junit": "junit",            # JUnit XML for test dashboards
    "gradescope": "gradescope",  # Gradescope autograder results.json
    "github": "github",          # ::error annotations for GitHub Actions
}


def render_text(report: Report, fmt: str, **options) -> str:
    """`report` in format `fmt`; `options`: the fields of RenderOptions
    (details=True: every failure in full)."""
    try:
        module = RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}") from None
    return importlib.import_module(f"grader.render.{module}").render(report, options=RenderOptions(**options))


def emit(report: Report, fmt: str, output: Path | None = None, **options) -> None:
    """Show `report` in `fmt` on stdout, or write it to `output`."""
    if output is None and fmt == "rich":
        from grader.render import rich as rich_renderer

        rich_renderer.print_report(report, options=RenderOptions(**options))  # in colour
        return
    text = render_text(report, fmt, **options)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
