"""The gradebook: one row per student, and the batch's facts (exercises, seed, grader).

A row's status says whether its points can be trusted as they are:
GRADED (the Report decides the points), EMPTY (no exercise file at all), or
one of the ways grading failed (Status ERROR, TIMEOUT, CRASHED: the row needs
an instructor's look and has no total).  Rows keep the student's full Report,
so feedback, diffs and LMS files are all drawn from the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from grader.version import __version__
from grader.results import Report, Status, report_from_dict

GRADEBOOK_SCHEMA = 1
GRADEBOOK_KIND = "attn-grade-gradebook"


class RowStatus(str, Enum):
    """A gradebook row's state; the failure values are the judge's `Status` values."""

    GRADED = "graded"
    EMPTY = "empty"
    ERROR = Status.ERROR.value
    TIMEOUT = Status.TIMEOUT.value
    CRASHED = Status.CRASHED.value

    @classmethod
    def of_failure(cls, status: Status) -> "RowStatus":
        return cls(status.value)

    @property
    def needs_attention(self) -> bool:
        return self in (RowStatus.ERROR, RowStatus.TIMEOUT, RowStatus.CRASHED)

    def __str__(self) -> str:
        return self.value


@dataclass
class Row:
    student: str
    submission: str                   # the student's path as found (a label)
    status: RowStatus
    points: dict[int, float] = field(default_factory=dict)
    max_total: float = 0.0
    note: str = ""
    snapshot_hash: str = ""           # sha256 of the snapshot graded
    cached: bool = False
    report: Report | None = None
    flags: list[str] = field(default_factory=list)   # for a human to look at (flags.py)
    code: dict[int, dict] = field(default_factory=dict)   # flags.Fingerprint per exercise, for merge

    @property
    def total(self) -> float | None:
        if self.status.needs_attention:
            return None
        return sum(self.points.values())

    def to_dict(self) -> dict:
        return {"student": self.student, "submission": self.submission, "status": self.status.value,
                "points": {str(k): round(v, 4) for k, v in sorted(self.points.items())},
                "total": None if self.total is None else round(self.total, 4),
                "max_total": self.max_total, "note": self.note, "hash": self.snapshot_hash,
                "flags": list(self.flags),
                "code": {str(k): v for k, v in sorted(self.code.items())},
                "report": None if self.report is None else self.report.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "Row":
        return cls(student=d["student"], submission=d.get("submission", ""),
                   status=RowStatus(d["status"]),
                   points={int(k): float(v) for k, v in (d.get("points") or {}).items()},
                   max_total=float(d.get("max_total") or 0.0), note=d.get("note", ""),
                   snapshot_hash=d.get("hash", ""), flags=list(d.get("flags") or []),
                   code={int(k): v for k, v in (d.get("code") or {}).items()},
                   report=None if d.get("report") is None else report_from_dict(d["report"]))

    @classmethod
    def from_report(cls, student: str, label: str, report: Report, snapshot_hash: str) -> "Row":
        notes = [f"{e.number}: {e.status.value}" for e in report.exercises if e.status is not Status.PASSED]
        return cls(student=student, submission=label, status=RowStatus.GRADED,
                   points={e.number: e.points for e in report.exercises}, max_total=report.max_total,
                   note="; ".join(notes), snapshot_hash=snapshot_hash, report=report)


@dataclass
class Gradebook:
    exercises: list[int]
    rows: list[Row]
    seed: int
    fingerprint: str
    shard: str | None = None
    options: dict = field(default_factory=dict)
    grader_version: str = __version__
    references: dict[int, dict] = field(default_factory=dict)   # the solutions' flags.Fingerprint

    def sorted_rows(self) -> list[Row]:
        return sorted(self.rows, key=lambda r: r.student)

    def row(self, student: str) -> Row | None:
        return next((r for r in self.rows if r.student == student), None)

    def to_dict(self) -> dict:
        return {"schema": GRADEBOOK_SCHEMA, "kind": GRADEBOOK_KIND,
                "grader_version": self.grader_version, "fingerprint": self.fingerprint,
                "seed": self.seed, "exercises": list(self.exercises), "shard": self.shard,
                "options": self.options, "students": [r.to_dict() for r in self.sorted_rows()],
                "references": {str(k): v for k, v in sorted(self.references.items())}}

    @classmethod
    def from_dict(cls, data: dict) -> "Gradebook":
        if data.get("kind") != GRADEBOOK_KIND or data.get("schema") != GRADEBOOK_SCHEMA:
            raise ValueError(f"not an attn-grade gradebook (schema {GRADEBOOK_SCHEMA})")
        return cls(exercises=list(data["exercises"]), rows=[Row.from_dict(r) for r in data["students"]],
                   seed=data.get("seed", 0), fingerprint=data.get("fingerprint", ""),
                   shard=data.get("shard"), options=data.get("options", {}),
                   grader_version=data.get("grader_version", ""),
                   references={int(k): v for k, v in (data.get("references") or {}).items()})
