"""One report per student to send back: `<student>.md` (the markdown scorecard,
the same content as `attn-grade all` shows) and `<student>.json` (the Report).

Flags (flags.py) are for the instructor and are never written here.  `--feedback
hints` leaves out actual and expected values and failing inputs, `--feedback
score` everything but points and statuses (results.redacted).
"""

from __future__ import annotations

import json
from pathlib import Path

from grader.batch.cache import atomic_write
from grader.batch.gradebook import Gradebook, Row, RowStatus
from grader.errors import GraderError
from grader.results import FeedbackLevel, redacted


def feedback_markdown(row: Row, level: FeedbackLevel = FeedbackLevel.FULL) -> str:
    from grader.render import markdown

    if row.report is not None:
        return markdown.render(redacted(row.report, level))
    if row.status is RowStatus.EMPTY:
        return ("## attn-grade\n\nNo exercise file was found in your submission, so nothing was "
                f"graded (0/{row.max_total:g} points).\n")
    return (f"## attn-grade\n\nYour submission could not be graded ({row.status.value}): "
            f"{markdown.inline(row.note)}\n\nYour instructor has been told and will look at it.\n")


def student_file_stem(student: str) -> str:
    """The student's folder name, safe as a file name (it already was one)."""
    if not student or student.startswith(".") or "/" in student or "\\" in student or "\0" in student:
        raise GraderError(f"cannot name a feedback file after {student!r}")
    return student


def write_student(row: Row, folder: Path, level: FeedbackLevel = FeedbackLevel.FULL) -> list[Path]:
    stem = student_file_stem(row.student)
    markdown_path, json_path = folder / f"{stem}.md", folder / f"{stem}.json"
    atomic_write(markdown_path, feedback_markdown(row, level))
    payload = redacted(row.report, level).to_dict() if row.report is not None else {
        "student": row.student, "status": row.status.value, "note": row.note, "report": None}
    atomic_write(json_path, json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return [markdown_path, json_path]


def write_feedback(book: Gradebook, folder: Path,
                   level: FeedbackLevel = FeedbackLevel.FULL) -> list[Path]:
    """Write every student's feedback into `folder` at `level`; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for row in book.sorted_rows():
        written += write_student(row, folder, level)
    return written
