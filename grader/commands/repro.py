"""`attn-grade repro EX TEST [--seed S]`: print the script that rebuilds a failure.

    attn-grade repro 1 matches_the_equation --seed 1234 > exercises/repro.py
    cd exercises && python repro.py      # AssertionError until the property holds
"""

from __future__ import annotations

import sys

import click

from grader.commands.options import use
from grader.devices import resolve_device
from grader.errors import handle_errors


@click.command("repro")
@click.argument("exercise")
@click.argument("test")
@use("submission", "seed", "device", "max_examples", "output", device="cpu")
@handle_errors
def repro_command(exercise, test, submission, seed, device, max_examples, output) -> None:
    """Print a self-contained script that rebuilds property TEST's failure.

    The failing tensors (and weights) are literals; the script imports your
    function or module from the submission folder, so run it there: it
    raises AssertionError until the property holds."""
    import random

    from grader.repro import repro

    seed = seed if seed is not None else random.SystemRandom().randrange(1, 2**31)
    found = repro(submission, exercise, test, seed=seed, device=resolve_device(device),
                  max_examples=max_examples)
    if output is None:
        sys.stdout.write(found.script)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(found.script, encoding="utf-8")
        click.echo(f"wrote {output}: run `python {output.name}` in {submission}", err=True)
