"""Renderers: each turns a `Report` into text.  Nothing else formats output."""

from __future__ import annotations

import sys
from pathlib import Path

from grader.results import Report


def render_text(report: Report, fmt: str) -> str:
    if fmt == "json":
        from grader.render import json as json_renderer

        return json_renderer.render(report)
    if fmt == "rich":
        from rich.console import Console

        from grader.render import rich as rich_renderer

        console = Console(record=True, width=110, file=open("/dev/null", "w"))  # noqa: SIM115
        rich_renderer.print_report(report, console)
        return console.export_text()
    raise ValueError(f"unknown format {fmt!r}")


def emit(report: Report, fmt: str, output: Path | None = None) -> None:
    """Show `report` in `fmt` on stdout, or write it to `output`."""
    if output is None and fmt == "rich":
        from grader.render import rich as rich_renderer

        rich_renderer.print_report(report)
        return
    text = render_text(report, fmt)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
