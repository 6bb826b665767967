"""`attn-grade render RESULTS.json`: show saved results in another format.

Grading runs once (`--format json --output results.json`); every other view
is rendered from that file without running anything again: the markdown
scorecard for a job summary or a pull request comment, the `github`
annotations, JUnit XML, Gradescope's results.json. Reading the file never
imports or runs student code, so it is safe anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from grader.errors import GraderError


def load_report(path: Path):
    from grader.results import report_from_dict

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return report_from_dict(data)
    except FileNotFoundError:
        raise GraderError(f"results file not found: {path}",
                          hint="write one with: attn-grade all --format json --output FILE") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GraderError(f"{path} is not an attn-grade JSON results file ({exc})",
                          hint="write one with: attn-grade all --format json --output FILE") from None


def _formats() -> tuple[str, ...]:
    from grader.render import RENDERERS

    return tuple(RENDERERS)


@click.command("render")
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(_formats()), default="markdown", show_default=True,
              help="How to show the results.")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Write to this file instead of stdout.")
@click.option("--details", is_flag=True, help="Show every failure in full (default: one cause said once).")
def render_command(results: Path, fmt: str, output: Path | None, details: bool = False) -> None:
    """Render a saved JSON RESULTS file (from --format json) in another format."""
    from grader.cli import handle_errors
    from grader.render import emit

    handle_errors(lambda: emit(load_report(results), fmt, output, details=details))()
