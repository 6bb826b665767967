"""`run_jobs` over plain dicts, for grader/verify.py until it uses the typed
records of jobs.py (GradingJob, JudgeReply) and judges.JudgePool itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from grader.batch.jobs import GradingJob, GradingSettings
from grader.batch.judges import JudgePool


def _job(entry: dict) -> GradingJob:
    settings = GradingSettings(**{k: entry[k] for k in GradingSettings.__dataclass_fields__ if k in entry})
    return GradingJob(path=entry["path"], exercises=tuple(entry["exercises"]), settings=settings)


def run_jobs(todo: list[dict], jobs: int, timeout: float, logs: Path) -> Iterator[tuple[dict, dict]]:
    """Grade `todo` ({"id", "path", "exercises", "seed", ...} each) on `jobs`
    judges; yield (job, reply) with reply {"ok": True, "report": {...}} or
    {"ok": False, "kind": error|timeout|crashed, "message": ...}."""
    if not todo:
        return
    entries = {}
    typed = []
    for entry in todo:
        job = _job(entry)
        entries[job.id] = entry
        typed.append(job)
    with JudgePool(min(jobs, len(todo)), logs, workdir=logs.parent / "judges", timeout=timeout) as pool:
        for job, reply in pool.grade(typed):
            entry = entries[job.id]
            if reply.ok:
                yield entry, {"id": entry.get("id"), "ok": True, "report": reply.report.to_dict()}
            else:
                yield entry, {"id": entry.get("id"), "ok": False, "kind": reply.status.value,
                              "message": reply.message}
