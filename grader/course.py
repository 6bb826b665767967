"""The course seed: the one seed every official grading run uses.

`batch`, `verify`, the Gradescope autograder and the student pull-request
workflow grade with it unless `--seed` says otherwise, so a submission gets
the same points every time it is graded for the record.  A student's own
`attn-grade exercise` / `all` draws a fresh seed per run instead (printed, so
any run reproduces with `--seed`).

The default below is public (it ships with the student repository).  For
official grading an instructor sets a private one, never committed to the
student repository: the environment variable ATTN_GRADE_COURSE_SEED (e.g. a
CI secret, or the Gradescope autograder's setup), or a file holding the
number at ~/.config/attn-grade/course-seed on the grading machine.
"""

from __future__ import annotations

import os
from pathlib import Path

from grader.errors import GraderError

PUBLIC_COURSE_SEED = 20240617
ENV_VAR = "ATTN_GRADE_COURSE_SEED"
CONFIG_FILE = Path("~/.config/attn-grade/course-seed")


def course_seed(environ: dict[str, str] | None = None, config: Path | None = None) -> int:
    """The course seed: ATTN_GRADE_COURSE_SEED, else the config file, else the public default."""
    environ = os.environ if environ is None else environ
    value, source = environ.get(ENV_VAR, "").strip(), ENV_VAR
    if not value:
        path = (config or CONFIG_FILE).expanduser()
        if path.is_file():
            value, source = path.read_text(encoding="utf-8").strip(), str(path)
    if not value:
        return PUBLIC_COURSE_SEED
    try:
        seed = int(value)
    except ValueError:
        raise GraderError(f"the course seed in {source} is not a whole number: {value[:40]!r}") from None
    if not 0 <= seed < 2**63:
        raise GraderError(f"the course seed in {source} is out of range (0 to 2**63 - 1)")
    return seed
