"""Gradebook files an LMS imports: Canvas's gradebook CSV and a Moodle grade-import CSV.

A roster CSV maps each student's folder name to the LMS's identity (see
docs/lms.md and docs/sample-roster.csv):

    folder,name,canvas_id,sis_user_id,sis_login_id,section,email,username

Only `folder` is required; Canvas needs one of canvas_id / sis_user_id /
sis_login_id, Moodle one of email / username / sis_user_id (its "ID number").
Nobody is dropped silently: students graded but not on the roster
(`unknown`), students on the roster with no submission (`missing`, written
with an empty score) and students whose grading failed (`ungraded`, empty
score) are all reported.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from grader.batch.gradebook import Gradebook, Row
from grader.errors import GraderError

ROSTER_COLUMNS = ("folder", "name", "canvas_id", "sis_user_id", "sis_login_id", "section", "email",
                  "username")
CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
MOODLE_IDENTITY = ("Username", "ID number", "Email address", "Full name")
LMS_FORMATS = ("canvas", "moodle")
DEFAULT_ASSIGNMENT = "attn-grade"


@dataclass(frozen=True)
class RosterEntry:
    folder: str
    name: str = ""
    canvas_id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    email: str = ""
    username: str = ""


@dataclass
class LmsFile:
    text: str
    unknown: list[str] = field(default_factory=list)     # graded, not on the roster
    missing: list[str] = field(default_factory=list)     # on the roster, no submission
    ungraded: list[str] = field(default_factory=list)    # grading failed: no score written

    def warnings(self) -> list[str]:
        found = []
        if self.unknown:
            found.append(f"not on the roster (not in the LMS file): {', '.join(self.unknown)}")
        if self.missing:
            found.append(f"on the roster without a submission (empty score): {', '.join(self.missing)}")
        if self.ungraded:
            found.append(f"grading failed (empty score, look at them): {', '.join(self.ungraded)}")
        return found


def read_roster(path: Path) -> dict[str, RosterEntry]:
    """{folder name: entry} from a roster CSV."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise GraderError(f"no roster file at {path}", hint="see docs/lms.md for its columns") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GraderError(f"cannot read the roster {path} ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    if "folder" not in header:
        raise GraderError(f"{path}: a roster needs a 'folder' column (the student's folder name)",
                          hint="columns: " + ",".join(ROSTER_COLUMNS))
    unknown = [h for h in header if h not in ROSTER_COLUMNS]
    if unknown:
        raise GraderError(f"{path}: unknown roster column(s) {', '.join(unknown)}",
                          hint="columns: " + ",".join(ROSTER_COLUMNS))
    roster: dict[str, RosterEntry] = {}
    for record in reader:
        values = {k.strip(): (v or "").strip() for k, v in record.items() if k}
        folder = values.get("folder", "")
        if not folder:
            raise GraderError(f"{path} line {reader.line_num}: empty folder name")
        if folder in roster:
            raise GraderError(f"{path} line {reader.line_num}: {folder!r} is on the roster twice")
        roster[folder] = RosterEntry(**values)
    return roster


IDENTITY_FIELDS = {"canvas": ("canvas_id", "sis_user_id", "sis_login_id"),
                   "moodle": ("email", "username", "sis_user_id")}


def check_roster(roster: dict[str, RosterEntry], fmt: str) -> None:
    """Every entry has an id the LMS `fmt` can match (checked before grading, not after)."""
    fields = IDENTITY_FIELDS[fmt]
    lacking = [e.folder for e in roster.values() if not any(getattr(e, f) for f in fields)]
    if lacking:
        raise GraderError(f"roster: {', '.join(lacking[:5])} {'has' if len(lacking) == 1 else 'have'} "
                          f"none of {', '.join(fields)} ({fmt.capitalize()} needs one)")


def _score(row: Row | None) -> str:
    if row is None or row.total is None:
        return ""
    return f"{row.total:.2f}"


def _match(book: Gradebook, roster: dict[str, RosterEntry]) -> tuple[LmsFile, list[tuple[RosterEntry, Row | None]]]:
    rows = {row.student: row for row in book.rows}
    result = LmsFile(text="")
    result.unknown = sorted(s for s in rows if s not in roster)
    result.missing = sorted(f for f in roster if f not in rows)
    result.ungraded = sorted(s for s, r in rows.items() if s in roster and r.total is None)
    pairs = [(entry, rows.get(folder)) for folder, entry in sorted(roster.items())]
    return result, pairs


def canvas_csv(book: Gradebook, roster: dict[str, RosterEntry],
               assignment: str = DEFAULT_ASSIGNMENT) -> LmsFile:
    """Canvas's gradebook import: identity columns, then one column for the
    assignment ("Name (assignment id)" updates an existing one; a new name
    creates it, with the Points Possible row's points)."""
    check_roster(roster, "canvas")
    result, pairs = _match(book, roster)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CANVAS_IDENTITY, assignment])
    max_total = max((r.max_total for r in book.rows), default=0.0)
    writer.writerow(["Points Possible", "", "", "", "", f"{max_total:.2f}"])
    for entry, row in pairs:
        writer.writerow([entry.name or entry.folder, entry.canvas_id, entry.sis_user_id,
                         entry.sis_login_id, entry.section, _score(row)])
    result.text = out.getvalue()
    return result


def moodle_csv(book: Gradebook, roster: dict[str, RosterEntry],
               assignment: str = DEFAULT_ASSIGNMENT) -> LmsFile:
    """A Moodle grade import CSV: identity columns (map one of them to the
    user at import), then the score column (map it to the grade item)."""
    check_roster(roster, "moodle")
    result, pairs = _match(book, roster)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*MOODLE_IDENTITY, assignment])
    for entry, row in pairs:
        writer.writerow([entry.username, entry.sis_user_id, entry.email, entry.name or entry.folder,
                         _score(row)])
    result.text = out.getvalue()
    return result


def lms_file(fmt: str, book: Gradebook, roster: dict[str, RosterEntry],
             assignment: str = DEFAULT_ASSIGNMENT) -> LmsFile:
    if fmt == "canvas":
        return canvas_csv(book, roster, assignment)
    if fmt == "moodle":
        return moodle_csv(book, roster, assignment)
    raise ValueError(f"unknown LMS format {fmt!r}")
