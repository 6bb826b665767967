"""`attn-grade generate`: stubs and notebooks from the solutions (grader/authoring/)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from grader.errors import handle_errors


@click.command("generate")
@click.option("--solutions", default="solutions", show_default=True,
              type=click.Path(path_type=Path), help="Folder of the reference solutions (with markers).")
@click.option("--exercises", default="exercises", show_default=True,
              type=click.Path(path_type=Path), help="Where the stubs (and notebooks/) go.")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 naming the files that are out of date (for CI).")
@handle_errors
def generate_command(solutions: Path, exercises: Path, check: bool) -> None:
    """Write the student stubs and one notebook per exercise from the solutions."""
    from grader.authoring.generate import run
    from grader.authoring.markers import MarkerError
    from grader.errors import ExitCode, GraderError

    try:
        result = run(solutions, exercises, check=check)
    except MarkerError as exc:
        raise GraderError(f"malformed solution marker: {exc}",
                          hint="markers are '# BEGIN SOLUTION' ... '# END SOLUTION' inside a "
                               "function, or '<code>  # SOLUTION' on one line") from None
    for extra in result.extra:
        click.echo(f"note: {extra} is not generated from any solution (left alone)", err=True)
    if check:
        if result.stale:
            click.secho(f"{len(result.stale)} generated file(s) out of date:", fg="red", err=True)
            for path in result.stale:
                click.echo(f"  {path}", err=True)
            click.echo(f"  hint: run attn-grade generate --solutions {solutions} "
                       f"--exercises {exercises}", err=True)
            sys.exit(int(ExitCode.SOME_FAILED))
        click.echo(f"{len(result.unchanged)} generated files up to date in {exercises}")
        return
    for path in result.stale:
        click.echo(f"wrote {path}")
    click.echo(f"{len(result.stale)} written, {len(result.unchanged)} already up to date")
