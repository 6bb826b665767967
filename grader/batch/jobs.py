"""What a judge is asked and what it answers: typed records, and their wire form.

The wire form is one JSON object per line.  Every job carries an id drawn at
random by the batch; a reply is accepted only when it names the id of the job
its judge was given (`JudgeReply.for_job`), so nothing that writes into a
judge's output (a submission, a stray print) can answer for another job.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field

from grader.results import Report, Status, report_from_dict

# The ways a judge can fail a job (the row then needs an instructor's eye).
FAILURE_STATUSES = (Status.ERROR, Status.TIMEOUT, Status.CRASHED)


@dataclass(frozen=True)
class GradingSettings:
    """Everything besides the submission that changes a grade (part of the cache key)."""

    seed: int
    max_examples: int | None = None
    train: bool = True
    device: str = "cpu"
    call_timeout: float | None = None
    dependencies: str = "reference"    # runner.GradingOptions.dependencies

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GradingJob:
    path: str                          # what the judge grades: a snapshot, never the student's folder
    exercises: tuple[int, ...]
    settings: GradingSettings
    id: str = field(default_factory=lambda: secrets.token_hex(8))

    def wire(self) -> str:
        return json.dumps({"id": self.id, "path": self.path, "exercises": list(self.exercises),
                           **self.settings.to_dict()}) + "\n"

    @classmethod
    def from_wire(cls, line: str | bytes) -> "GradingJob":
        data = json.loads(line)
        settings = GradingSettings(**{k: data[k] for k in GradingSettings.__dataclass_fields__ if k in data})
        return cls(path=data["path"], exercises=tuple(data["exercises"]), settings=settings,
                   id=str(data["id"]))


@dataclass(frozen=True)
class JudgeReply:
    """A judge's answer: a Report, or why there is none (status ERROR, TIMEOUT or CRASHED)."""

    job_id: str | None
    report: Report | None = None
    status: Status | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.report is not None

    @classmethod
    def graded(cls, job_id: str, report: Report) -> "JudgeReply":
        return cls(job_id, report=report)

    @classmethod
    def failed(cls, job_id: str | None, status: Status, message: str) -> "JudgeReply":
        if status not in FAILURE_STATUSES:
            raise ValueError(f"{status} is not a way a judge fails")
        return cls(job_id, status=status, message=message)

    def wire(self) -> str:
        if self.ok:
            return json.dumps({"id": self.job_id, "ok": True, "report": self.report.to_dict()}) + "\n"
        return json.dumps({"id": self.job_id, "ok": False, "status": self.status.value,
                           "message": self.message}) + "\n"

    @classmethod
    def from_wire(cls, line: bytes | str) -> "JudgeReply":
        """Parse a reply line; anything malformed is an ERROR reply (never a result)."""
        try:
            data = json.loads(line)
            job_id = data.get("id")
            if data.get("ok") is True:
                return cls.graded(job_id, report_from_dict(data["report"]))
            status = Status(data.get("status", "error"))
            return cls.failed(job_id, status if status in FAILURE_STATUSES else Status.ERROR,
                              str(data.get("message", "")))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            text = line[:200] if isinstance(line, (bytes, str)) else line
            return cls.failed(None, Status.ERROR, f"unreadable judge reply {text!r} ({exc})")

    def for_job(self, job: GradingJob) -> "JudgeReply":
        """This reply if it answers `job` (same id, the exercises asked for); else an ERROR."""
        if self.job_id != job.id:
            return JudgeReply.failed(job.id, Status.ERROR,
                                     f"the judge answered for another job (id {self.job_id!r}, "
                                     f"expected {job.id!r}); its answer was discarded")
        if self.ok and sorted(e.number for e in self.report.exercises) != sorted(job.exercises):
            return JudgeReply.failed(job.id, Status.ERROR,
                                     "the judge's report does not grade the exercises asked for; "
                                     "its answer was discarded")
        return self
