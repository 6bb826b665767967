"""`attn-grade batch`, `merge` and `diff`: thin click layers over grader.batch."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from grader.batch import diff as diffs
from grader.batch import lms
from grader.batch.cache import default_cache_dir, is_inside
from grader.batch.discover import parse_exercises, parse_shard
from grader.batch.feedback import write_feedback
from grader.batch.merge import merge
from grader.batch.progress import ProgressView
from grader.batch.run import DEFAULT_TIMEOUT, BatchOptions, run_batch
from grader.batch.writers import GRADEBOOK_FORMATS, read_gradebook, write_gradebook
from grader.devices import resolve_device
from grader.commands.options import use
from grader.course import course_seed
from grader.errors import ExitCode, GraderError, handle_errors
from grader.results import FeedbackLevel
from grader.sandbox import isolation

BATCH_FORMATS = GRADEBOOK_FORMATS + lms.LMS_FORMATS


def _course_folder(value: Path | None, default: str) -> Path | None:
    if value is not None:
        if not value.is_dir():
            raise GraderError(f"no folder at {value}")
        return value
    return Path(default) if Path(default).is_dir() else None


def load_roster(fmt: str, roster: Path | None) -> dict[str, lms.RosterEntry] | None:
    """The roster an LMS format needs, read and checked before anything is graded."""
    if fmt not in lms.LMS_FORMATS:
        return None
    if roster is None:
        raise GraderError(f"--format {fmt} needs --roster ROSTER.csv (folder names → LMS ids)",
                          hint="see docs/lms.md")
    entries = lms.read_roster(roster)
    lms.check_roster(entries, fmt)
    return entries


def write_outputs(book, output: Path, fmt: str, roster: dict[str, lms.RosterEntry] | None,
                  assignment: str) -> list[Path]:
    """The gradebook files; for an LMS format, its CSV at `output` and the gradebook JSON beside."""
    if fmt not in lms.LMS_FORMATS:
        return write_gradebook(book, output, fmt)
    exported = lms.lms_file(fmt, book, roster or {}, assignment)
    for warning in exported.warnings():
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(exported.text, encoding="utf-8")
    json_path = output.with_suffix(".json") if output.suffix != ".json" else output.with_suffix(".gradebook.json")
    return [output, *write_gradebook(book, json_path, "json")]


@click.command("batch")
@click.argument("submissions", type=click.Path(path_type=Path))
@click.option("--output", "-o", type=click.Path(path_type=Path), default=Path("grades.csv"),
              show_default=True, help="Gradebook file: .csv (a .json with every report is written "
                                      "beside it) or .json.")
@click.option("--format", "fmt", type=click.Choice(BATCH_FORMATS), default="auto", show_default=True,
              help="auto: by the output's suffix (csv also writes the json); canvas / moodle: the "
                   "LMS's import CSV (needs --roster), with the gradebook JSON beside it.")
@click.option("--roster", type=click.Path(path_type=Path), default=None,
              help="CSV mapping folder names to LMS ids (docs/lms.md); for --format canvas|moodle.")
@click.option("--assignment", default=lms.DEFAULT_ASSIGNMENT, show_default=True,
              help="The LMS column: 'Name (id)' updates an existing Canvas assignment.")
@click.option("--feedback-dir", type=click.Path(path_type=Path), default=None,
              help="Write one STUDENT.md (the scorecard) and STUDENT.json per student here.")
@click.option("--feedback", "feedback_level", type=click.Choice([level.value for level in FeedbackLevel]),
              default=FeedbackLevel.FULL.value, show_default=True,
              help="What --feedback-dir shows: full (values and inputs), hints (no values), score "
                   "(points only).  The gradebook JSON always keeps everything.")
@click.option("--compare", "compare_with", type=click.Path(path_type=Path), default=None,
              help="A previous run's gradebook (.json or .csv): print what changed, and why.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Judge processes grading in parallel.")
@click.option("--exercises", "-e", "exercise_keys", multiple=True,
              help="Exercises to grade (1,2,3 or repeated); default: all with hidden tests.")
@click.option("--shard", default=None, help="i/n: grade only this deterministic slice (1-based).")
@click.option("--force", is_flag=True, help="Regrade even what the cache already holds.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              help="Where reports are cached [default: .attn-grade-cache beside --output, outside "
                   "SUBMISSIONS].")
@click.option("--stubs", type=click.Path(path_type=Path), default=None,
              help="The course's stubs, left out of the duplicate flags [default: ./exercises if there].")
@click.option("--solutions", type=click.Path(path_type=Path), default=None,
              help="The reference solutions: code identical to them is flagged "
                   "[default: ./solutions if there].")
@use("seed", "max_examples", "no_train", "device", "dependencies", "allow_weak_isolation",
     device="cpu")
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds one submission may take before its judge is stopped.")
@click.option("--call-timeout", type=float, default=None,
              help="Seconds one call into student code may take (default: the grader's).")
@handle_errors
def batch_command(submissions: Path, output: Path, fmt: str, roster, assignment: str, feedback_dir,
                  feedback_level: str, compare_with, jobs: int, exercise_keys, shard, force: bool, cache_dir, stubs,
                  solutions, seed: int, max_examples, no_train: bool, device: str, timeout: float,
                  call_timeout, dependencies: str, allow_weak_isolation: bool) -> None:
    """Grade every submission in SUBMISSIONS (one sub-folder or notebook per student)."""
    isolation.require_isolation(isolation.UID, allow_weak_isolation)   # other people's code
    entries = load_roster(fmt, roster)
    if feedback_dir is not None and is_inside(feedback_dir, submissions):
        raise GraderError(f"--feedback-dir {feedback_dir} is inside the class folder {submissions}",
                          hint="write feedback somewhere else (it would be taken for a student)")
    previous = read_gradebook(compare_with) if compare_with is not None else None
    options = BatchOptions(exercises=parse_exercises(exercise_keys), jobs=jobs,
                           seed=course_seed() if seed is None else seed,
                           max_examples=max_examples, train=not no_train,
                           device=resolve_device(device), force=force, shard=parse_shard(shard),
                           cache_dir=cache_dir or default_cache_dir(output, submissions),
                           timeout=timeout, call_timeout=call_timeout, dependencies=dependencies,
                           stubs=_course_folder(stubs, "exercises"),
                           solutions=_course_folder(solutions, "solutions"))
    isolation.hide_from_workers(submissions, options.cache_dir)   # from every student's worker
    book, stats = run_batch(submissions, options, progress=ProgressView())
    written = write_outputs(book, output, fmt, entries, assignment)
    if feedback_dir is not None:
        feedback = write_feedback(book, feedback_dir, FeedbackLevel(feedback_level))
        written.append(feedback_dir)
        click.echo(f"feedback: {len(feedback) // 2} students in {feedback_dir}", err=True)
    rate = f", {stats.per_minute:.1f} submissions/min with --jobs {jobs}" if stats.graded else ""
    click.echo(f"{stats.total} submissions{' (shard ' + shard + ')' if shard else ''}: "
               f"{stats.graded} graded, {stats.cached} from the cache, {stats.empty} empty, "
               f"{stats.failed} need attention; {stats.seconds:.0f} s grading{rate}", err=True)
    for row in book.sorted_rows():
        if row.status.needs_attention:
            click.secho(f"  {row.student}: {row.status.value}: {row.note}", fg="yellow", err=True)
    flagged = [row for row in book.sorted_rows() if row.flags]
    if flagged:
        click.echo("flags (for a human to look at, never a penalty):", err=True)
        for row in flagged:
            click.echo(f"  {row.student}: {'; '.join(row.flags)}", err=True)
    if previous is not None:
        click.echo(f"compared with {compare_with}:", err=True)
        for line in diffs.summary_lines(diffs.diff_gradebooks(previous, book)):
            click.echo(f"  {line}", err=True)
    click.echo("wrote " + ", ".join(map(str, written)), err=True)
    sys.exit(int(ExitCode.SOME_FAILED if stats.failed else ExitCode.ALL_PASSED))


@click.command("merge")
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--output", "-o", type=click.Path(path_type=Path), default=Path("gradebook.csv"),
              show_default=True, help="The merged gradebook (.csv, with a .json beside it, or .json).")
@click.option("--format", "fmt", type=click.Choice(GRADEBOOK_FORMATS), default="auto", show_default=True)
@handle_errors
def merge_command(results, output: Path, fmt: str) -> None:
    """Join the results of `batch --shard i/n` runs (JSON or CSV) into one gradebook."""
    book, warnings = merge(list(results))
    for warning in warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    written = write_gradebook(book, output, fmt)
    click.echo(f"merged {len(results)} result files, {len(book.rows)} students: wrote "
               + ", ".join(map(str, written)), err=True)


@click.command("diff")
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@handle_errors
def diff_command(old: Path, new: Path) -> None:
    """What changed between two batch runs (gradebook CSV or JSON), per student and exercise, and why.

    Exit code 0 when no grade changed, 1 when some did."""
    result = diffs.diff_files(old, new)
    for line in diffs.summary_lines(result):
        click.echo(line)
    sys.exit(int(ExitCode.ALL_PASSED if result.empty else ExitCode.SOME_FAILED))
