"""The `attn-grade` command line: one click group, one module per command.

Each command is a thin layer: parse options (declared once, in options.py),
call plain functions elsewhere in grader/, render, map to an `ExitCode`.
"""

from __future__ import annotations

import click

from grader.version import __version__
from grader.commands.batch import batch_command, diff_command, merge_command
from grader.commands import grading
from grader.commands.grading import all_command, exercise_command
from grader.commands.doctor import doctor_command
from grader.commands.export import export_student_command
from grader.commands.generate import generate_command
from grader.commands.listing import list_command
from grader.commands.render import render_command
from grader.commands.repro import repro_command
from grader.commands.verify import verify_command
from grader.commands.watch import watch_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="attn-grade")
def main() -> None:
    """attn-grade: grade the attention & Transformer exercises.

    \b
    Exit codes: 0 all passed, 1 some exercise lost points,
                2 bad usage or input, 3 internal error.
    """


for _command in (list_command, exercise_command, all_command, generate_command, batch_command,
                 merge_command, diff_command, verify_command, render_command, export_student_command,
                 repro_command, watch_command, doctor_command):
    main.add_command(_command)


def run() -> None:
    """The `attn-grade` console script: `main`, exiting without teardown."""
    grading.FAST_EXIT = True
    main()
