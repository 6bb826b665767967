"""`attn-grade doctor`: which sandbox level this machine reaches, and if it
is not `strict`, what is missing (plain function: isolation.doctor_lines).

Register with `main.add_command(doctor_command)`.
"""

from __future__ import annotations

import click

from grader.sandbox import isolation


@click.command("doctor")
def doctor_command() -> None:
    """Check how well this machine can isolate student code."""
    for line in isolation.doctor_lines(isolation.detect_level()):
        click.echo(line)
