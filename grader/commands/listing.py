"""`attn-grade list`: the exercises, their files and points."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from grader import registry
from grader.errors import handle_errors


@click.command("list")
@handle_errors
def list_command() -> None:
    """List the exercises, their files and points."""
    table = Table(title="attn-grade exercises")
    for column in ("#", "slug", "title", "file", "points", "depends on"):
        table.add_column(column)
    for ex in registry.EXERCISES:
        table.add_row(str(ex.number), ex.slug, ex.title, ex.file, f"{ex.points:g}",
                      ", ".join(map(str, ex.depends_on)) or "-")
    Console().print(table)
