"""`attn-grade export-student DEST`: the repository students receive (grader/export.py)."""

from __future__ import annotations

from pathlib import Path

import click

from grader.errors import handle_errors
from grader.export import export_student


@click.command("export-student")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--source", type=click.Path(path_type=Path, exists=True, file_okay=False), default=".",
              show_default=True, help="The course repository (holds exercises/ and solutions/).")
@click.option("--harness", default=None,
              help="What the student repository installs the grader from: a wheel, a folder of "
                   "attn-grade's source, a VCS URL (git+https://github.com/ORG/attn-grade@v0.1.0) "
                   "or a published requirement (attn-grade==0.1.0); checked to resolve. "
                   "[default: a wheel of this harness, built into dist/]")
@click.option("--fail-under", type=click.FloatRange(min=0), default=None, metavar="POINTS",
              help="The workflow's default threshold (default: full marks); a repository variable "
                   "ATTN_GRADE_FAIL_UNDER overrides it.")
@click.option("--force", is_flag=True, help="Write into a folder that is not empty.")
@handle_errors
def export_student_command(dest: Path, source: Path, harness: str, fail_under, force: bool) -> None:
    """Write the repository students receive into DEST: stubs, README, workflow. No solutions."""
    written = export_student(dest, source, harness=harness, fail_under=fail_under, force=force)
    click.echo(f"wrote {len(written)} files to {dest} (no solutions)")
    for path in written:
        click.echo(f"  {path.relative_to(dest.resolve())}")
