"""`attn-grade doctor`: which sandbox level this machine reaches and, if it
is not `strict`, what is missing (plain function: isolation.doctor_lines).
With `--minimum LEVEL` it is also the check a grading script runs first."""

from __future__ import annotations

import click

from grader.commands.options import use
from grader.errors import handle_errors
from grader.sandbox import isolation


@click.command("doctor")
@click.option("--minimum", type=click.Choice(isolation.LEVELS), default=None,
              help="Exit 2 (after the report) when this machine isolates workers below LEVEL.")
@use("allow_weak_isolation")
@handle_errors
def doctor_command(minimum: str | None, allow_weak_isolation: bool) -> None:
    """Check how well this machine can isolate student code."""
    info = isolation.detect_level()
    for line in isolation.doctor_lines(info):
        click.echo(line)
    if minimum is not None:
        isolation.require_isolation(minimum, allow_weak_isolation, info)
