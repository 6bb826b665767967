"""Grade a class: discover, snapshot, reuse the cache, grade the rest on judges, flag.

    students ─ discover.py ─ snapshot.py (judge-owned, read-only, hashed)
        │                        │
        │                 cache.py (snapshot hash + grader fingerprint + settings)
        │                        │ miss
        │                 judges.py (N judge processes, each reply checked against its job)
        └──────── gradebook.py rows ─ flags.py (duplicates, for a human to look at)

Every row is kept as soon as it is known and every graded report is cached
as soon as it arrives, so one student's failure (or an interrupted batch)
never loses what was already graded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grader import registry
from grader.batch import flags
from grader.batch.cache import Cache, cache_key, grader_fingerprint, user_cache_dir
from grader.batch.discover import Student, discover_class, take_shard
from grader.batch.gradebook import Gradebook, Row, RowStatus
from grader.batch.jobs import GradingJob, GradingSettings
from grader.batch.judges import JudgePool
from grader.batch.snapshot import SnapshotFolder
from grader.course import PUBLIC_COURSE_SEED
from grader.errors import GraderError
from grader.submission import Submission

DEFAULT_TIMEOUT = 1800.0

Progress = Callable[..., None]


@dataclass
class BatchOptions:
    exercises: list[int]
    jobs: int = 1
    seed: int = PUBLIC_COURSE_SEED
    max_examples: int | None = None
    train: bool = True
    device: str = "cpu"
    force: bool = False
    shard: tuple[int, int] | None = None
    cache_dir: Path | None = None         # default: the user's cache folder (never the class folder)
    timeout: float = DEFAULT_TIMEOUT      # seconds one submission may take on its judge
    call_timeout: float | None = None
    dependencies: str = "reference"       # runner.GradingOptions.dependencies
    fingerprint: str | None = None        # default: grader_fingerprint()
    stubs: Path | None = None             # the course's exercises/ (stub text is not flagged)
    solutions: Path | None = None         # the course's solutions/ (code identical to them is flagged)

    def settings(self) -> GradingSettings:
        return GradingSettings(seed=self.seed, max_examples=self.max_examples, train=self.train,
                               device=self.device, call_timeout=self.call_timeout,
                               dependencies=self.dependencies)


@dataclass
class BatchStats:
    total: int = 0
    graded: int = 0
    cached: int = 0
    empty: int = 0
    failed: int = 0
    seconds: float = 0.0

    @property
    def per_minute(self) -> float:
        return 60.0 * self.graded / self.seconds if self.seconds > 0 and self.graded else 0.0


@dataclass(frozen=True)
class PendingJob:
    """A job on its way to a judge, with what the batch keeps for its row."""

    job: GradingJob
    student: Student
    snapshot_hash: str
    cache_key: str


def run_batch(root: Path, options: BatchOptions, progress: Progress | None = None
              ) -> tuple[Gradebook, BatchStats]:
    """Grade every submission of `root` (or the shard's slice of them)."""
    started = time.perf_counter()
    stats = BatchStats()
    fingerprint = options.fingerprint or grader_fingerprint()
    settings = options.settings()
    cache = Cache(options.cache_dir or user_cache_dir(), submissions=root)
    students = take_shard(discover_class(root), options.shard)
    stats.total = len(students)
    modules = [registry.get(n).module for n in options.exercises]
    max_total = sum(registry.get(n).points for n in options.exercises)
    rows: list[Row] = []
    sources: dict[str, Submission] = {}

    def failed(student: Student, message: str, status: RowStatus = RowStatus.ERROR,
               snapshot_hash: str = "") -> Row:
        stats.failed += 1
        return Row(student.name, str(student.root), status, max_total=max_total, note=message,
                   snapshot_hash=snapshot_hash)

    with SnapshotFolder() as snapshots:
        # Every snapshot is taken before any student code runs.
        todo: list[PendingJob] = []
        for student in students:
            try:
                snapshot = snapshots.take(student.root)
                submission = Submission.from_path(snapshot.path)
            except GraderError as exc:
                rows.append(failed(student, exc.message))
                continue
            sources[student.name] = submission
            if not any(submission.has(m) for m in modules):
                rows.append(Row(student.name, str(student.root), RowStatus.EMPTY,
                                points={n: 0.0 for n in options.exercises}, max_total=max_total,
                                note="no exercise file", snapshot_hash=snapshot.digest))
                stats.empty += 1
                continue
            key = cache_key(snapshot.digest, options.exercises, settings.to_dict(), fingerprint)
            cached = None if options.force else cache.get(key)
            if cached is not None:
                cached.submission = str(student.root)
                row = Row.from_report(student.name, str(student.root), cached, snapshot.digest)
                row.cached = True
                rows.append(row)
                stats.cached += 1
                continue
            job = GradingJob(path=str(snapshot.path), exercises=tuple(options.exercises),
                             settings=settings)
            todo.append(PendingJob(job, student, snapshot.digest, key))
        if progress:
            progress("start", total=len(students), todo=len(todo), done=len(rows))
        graded_started = time.perf_counter()
        if todo:
            by_id = {p.job.id: p for p in todo}
            with JudgePool(min(options.jobs, len(todo)), cache.folder / "logs",
                           workdir=snapshots.root / "judges", timeout=options.timeout) as pool:
                for job, reply in pool.grade(p.job for p in todo):
                    pending = by_id[job.id]
                    student = pending.student
                    if reply.ok:
                        report = reply.report
                        report.submission = str(student.root)
                        try:
                            cache.put(pending.cache_key, report)
                        except OSError as exc:   # the grade stands; only the cache missed it
                            if progress:
                                progress("warning", message=f"could not cache {student.name}: {exc}")
                        row = Row.from_report(student.name, str(student.root), report,
                                              pending.snapshot_hash)
                        stats.graded += 1
                    else:
                        row = failed(student, reply.message, RowStatus.of_failure(reply.status),
                                     pending.snapshot_hash)
                    rows.append(row)
                    if progress:
                        progress("row", row=row)
            stats.seconds = time.perf_counter() - graded_started
    references = flags.flag_rows(rows, sources, options.exercises, stubs=flags.course_texts(options.stubs),
                                 solutions=flags.course_texts(options.solutions))
    book = Gradebook(exercises=list(options.exercises), rows=rows, seed=options.seed,
                     references={n: p.to_dict() for n, p in references.items() if not p.empty},
                     fingerprint=fingerprint,
                     shard=f"{options.shard[0]}/{options.shard[1]}" if options.shard else None,
                     options=settings.to_dict())
    if progress:
        progress("done", seconds=time.perf_counter() - started)
    return book, stats
