"""`attn-grade batch` and `attn-grade merge`: regrade a whole class.

    attn-grade batch SUBMISSIONS_DIR --jobs 2 --output grades.csv [--shard 1/4]
    attn-grade merge shard-*.json --output gradebook.csv

- One submission per sub-folder of SUBMISSIONS_DIR (or per notebook directly
  in it); the student is the folder's (or notebook's) name.
- N judge processes (`python -m grader.batch --serve`) grade in parallel;
  each keeps torch, pytest and its worker zygote warm across submissions and
  never imports student code (its workers do).  A judge that dies or runs
  past --timeout is killed and replaced; that submission gets a row saying
  so, and the batch goes on.
- Reports are cached per submission content hash + grader fingerprint
  (version and the grader's own source) + grading options, as Report JSON in
  SUBMISSIONS_DIR/.attn-grade-cache/; a re-run grades only what changed,
  unless --force.
- --shard i/n grades every n-th submission (sorted by student, from the i-th):
  a deterministic slice for a CI matrix; `merge` joins the shards' JSON (or
  CSV) into one gradebook, identical to an unsharded run.
- Output: a CSV (one row per student: points per exercise, total, status)
  and, beside it, the same gradebook as JSON with every student's Report.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from grader import __version__, registry
from grader.errors import GraderError
from grader.registry import Exercise

GRADEBOOK_SCHEMA = 1
CACHE_DIR = ".attn-grade-cache"
DEFAULT_SEED = 20240617
DEFAULT_TIMEOUT = 1800.0
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]

# Row statuses: graded (the Report decides the points), empty (no exercise
# file at all), error (unreadable submission or a grader error), timeout and
# crashed (the judge itself ran past --timeout or died).
NEEDS_ATTENTION = ("error", "timeout", "crashed")


# ------------------------------------------------------------------ basics
def hidden_tests_exist(exercise: Exercise) -> bool:
    return (_PACKAGE_ROOT / "grader" / "hidden" / exercise.test_module).is_file()


def gradable_exercises() -> list[Exercise]:
    """The exercises whose hidden tests exist."""
    return [e for e in registry.EXERCISES if hidden_tests_exist(e)]


# Parts of the grader that only present or organise results: editing them
# does not change a grade, so it does not invalidate the cache.
_PRESENTATION = ("render/", "authoring/", "templates/", "batch.py", "verify.py", "notebook.py",
                 "cli.py", "export.py", "ci.py")


def fingerprint() -> str:
    """The grader version plus a hash of the source that decides grades
    (hidden tests, sandbox, runner...): a cached grade is reused only by a
    grader that would give the same one."""
    digest = hashlib.sha256(__version__.encode())
    root = _PACKAGE_ROOT / "grader"
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if (path.suffix in (".py", ".ini", ".json") and "__pycache__" not in path.parts
                and not rel.startswith(_PRESENTATION)):
            digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{__version__}+{digest.hexdigest()[:12]}"


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise GraderError(f"--shard {text!r}: expected i/n, e.g. 1/4") from None
    if count < 1 or not 1 <= index <= count:
        raise GraderError(f"--shard {text!r}: i must be between 1 and n (1/{max(count, 1)} ... "
                          f"{max(count, 1)}/{max(count, 1)})")
    return index, count


def discover(root: Path) -> list[tuple[str, Path]]:
    """(student, path) for each sub-folder and each notebook in `root`, sorted."""
    if not root.is_dir():
        raise GraderError(f"no submissions folder at {root}",
                          hint="pass a folder holding one sub-folder (or notebook) per student")
    found: dict[str, Path] = {}
    for path in sorted(root.iterdir()):
        if path.name.startswith((".", "__")):          # .attn-grade-cache, __MACOSX, ...
            continue
        if path.is_dir():
            found.setdefault(path.name, path)
        elif path.suffix == ".ipynb":
            found.setdefault(path.stem, path)
    return sorted(found.items())


def submission_root(path: Path, depth: int = 3) -> Path:
    """The folder holding a student's exercise files: `path` itself, or the
    shallowest folder under it that has some (an unzipped `alice/course-main/
    exercises/`), first in sorted order."""
    if not path.is_dir():
        return path
    from grader.submission import module_for_name

    def has_exercises(folder: Path) -> bool:
        return any(f.suffix in (".py", ".ipynb") and not f.name.startswith("test_")
                   and module_for_name(f.stem) is not None for f in folder.iterdir() if f.is_file())

    level = [path]
    for _ in range(depth + 1):
        for folder in level:
            if has_exercises(folder):
                return folder
        level = [child for folder in level for child in sorted(folder.iterdir())
                 if child.is_dir() and not child.name.startswith((".", "__"))]
    return path


def take_shard(items: list, shard: tuple[int, int] | None) -> list:
    if shard is None:
        return list(items)
    index, count = shard
    return list(items)[index - 1::count]


# ------------------------------------------------------------------ rows
@dataclass
class Row:
    student: str
    submission: str
    status: str                       # graded, empty, error, timeout, crashed
    points: dict[int, float] = field(default_factory=dict)
    max_total: float = 0.0
    note: str = ""
    content_hash: str = ""
    cached: bool = False
    report: dict | None = None        # the Report's JSON

    @property
    def total(self) -> float | None:
        if self.status in NEEDS_ATTENTION:
            return None
        return sum(self.points.values())

    def to_dict(self) -> dict:
        return {"student": self.student, "submission": self.submission, "status": self.status,
                "points": {str(k): round(v, 4) for k, v in sorted(self.points.items())},
                "total": None if self.total is None else round(self.total, 4),
                "max_total": self.max_total, "note": self.note, "hash": self.content_hash,
                "report": self.report}


def row_from_dict(d: dict) -> Row:
    return Row(student=d["student"], submission=d.get("submission", ""), status=d["status"],
               points={int(k): float(v) for k, v in (d.get("points") or {}).items()},
               max_total=float(d.get("max_total") or 0.0), note=d.get("note", ""),
               content_hash=d.get("hash", ""), report=d.get("report"))


def row_from_report(student: str, path: Path, report_dict: dict, content_hash: str) -> Row:
    from grader.results import report_from_dict

    report = report_from_dict(report_dict)
    notes = [f"{e.number}: {e.status.value}" for e in report.exercises if e.status.value != "passed"]
    return Row(student=student, submission=str(path), status="graded",
               points={e.number: e.points for e in report.exercises}, max_total=report.max_total,
               note="; ".join(notes), content_hash=content_hash, report=report_dict)


# ------------------------------------------------------------------ gradebook
@dataclass
class Gradebook:
    exercises: list[int]
    rows: list[Row]
    seed: int
    fingerprint: str
    shard: str | None = None
    options: dict = field(default_factory=dict)

    def sorted_rows(self) -> list[Row]:
        return sorted(self.rows, key=lambda r: r.student)

    def to_dict(self) -> dict:
        return {"schema": GRADEBOOK_SCHEMA, "kind": "attn-grade-gradebook",
                "grader_version": __version__, "fingerprint": self.fingerprint, "seed": self.seed,
                "exercises": list(self.exercises), "shard": self.shard, "options": self.options,
                "students": [r.to_dict() for r in self.sorted_rows()]}

    def csv_text(self) -> str:
        columns = [registry.get(n).module for n in self.exercises]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["student", *columns, "total", "max_total", "status", "note", "hash"])
        for row in self.sorted_rows():
            cells = []
            for number in self.exercises:
                value = row.points.get(number)
                cells.append("" if value is None or row.status in NEEDS_ATTENTION else f"{value:.2f}")
            total = row.total
            writer.writerow([row.student, *cells, "" if total is None else f"{total:.2f}",
                             f"{row.max_total:.2f}", row.status, row.note, row.content_hash[:12]])
        return out.getvalue()

    def write(self, output: Path, fmt: str = "auto") -> list[Path]:
        """Write CSV and/or JSON; `auto`: by suffix, and a .csv gets its .json beside it."""
        if fmt == "auto":
            fmt = "json" if output.suffix == ".json" else "both"
        output.parent.mkdir(parents=True, exist_ok=True)
        written = []
        if fmt in ("csv", "both"):
            _atomic_write(output, self.csv_text())
            written.append(output)
        if fmt in ("json", "both"):
            target = output if fmt == "json" else output.with_suffix(".json")
            _atomic_write(target, json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")
            written.append(target)
        return written


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_gradebook(path: Path) -> Gradebook:
    """A gradebook JSON, or a CSV written by `batch` (points only)."""
    if not path.is_file():
        raise GraderError(f"no results file at {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise GraderError(f"{path} is not valid JSON ({exc})") from None
        if data.get("kind") != "attn-grade-gradebook" or data.get("schema") != GRADEBOOK_SCHEMA:
            raise GraderError(f"{path} is not an attn-grade gradebook (schema {GRADEBOOK_SCHEMA})")
        return Gradebook(exercises=list(data["exercises"]),
                         rows=[row_from_dict(r) for r in data["students"]], seed=data.get("seed", 0),
                         fingerprint=data.get("fingerprint", ""), shard=data.get("shard"),
                         options=data.get("options", {}))
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    numbers = [registry.get(c).number for c in header if registry.by_module(c) is not None]
    if "student" not in header or not numbers:
        raise GraderError(f"{path} is not a gradebook CSV written by attn-grade batch")
    rows = []
    for record in reader:
        points = {registry.get(c).number: float(record[c]) for c in header
                  if registry.by_module(c) is not None and record.get(c) not in (None, "")}
        rows.append(Row(student=record["student"], submission="", status=record.get("status", ""),
                        points=points, max_total=float(record.get("max_total") or 0.0),
                        note=record.get("note", ""), content_hash=record.get("hash", "")))
    return Gradebook(exercises=numbers, rows=rows, seed=0, fingerprint="")


def merge(paths: list[Path]) -> tuple[Gradebook, list[str]]:
    """One gradebook from the shards' results; (gradebook, warnings)."""
    if not paths:
        raise GraderError("nothing to merge", hint="attn-grade merge shard-1.json shard-2.json ...")
    books = [(path, read_gradebook(path)) for path in paths]
    warnings: list[str] = []
    first_path, first = books[0]
    rows: dict[str, tuple[Path, Row]] = {}
    for path, book in books:
        if book.exercises != first.exercises:
            raise GraderError(f"{path} grades exercises {book.exercises}, {first_path} grades "
                              f"{first.exercises}: they are not shards of one batch")
        for key in ("fingerprint", "seed"):
            mine, theirs = getattr(book, key), getattr(first, key)
            if mine and theirs and mine != theirs:
                warnings.append(f"{path} was graded with {key} {mine}, {first_path} with {theirs}")
        for row in book.rows:
            if row.student in rows:
                other_path, other = rows[row.student]
                if other.to_dict() != row.to_dict():
                    raise GraderError(f"student {row.student!r} is in both {other_path} and {path} "
                                      "with different results")
                continue
            rows[row.student] = (path, row)
    book = Gradebook(exercises=first.exercises, rows=[r for _, r in rows.values()], seed=first.seed,
                     fingerprint=first.fingerprint, shard=None, options=first.options)
    return book, warnings


# ------------------------------------------------------------------ cache
def cache_key(content_hash: str, exercises: list[int], options: dict, print_: str) -> str:
    blob = json.dumps({"hash": content_hash, "grader": print_, "exercises": exercises,
                       "options": options}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class Cache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> dict | None:
        path = self.path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            from grader.results import report_from_dict

            report_from_dict(data["report"])   # still readable by this grader
            return data["report"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, report: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.path(key), json.dumps({"key": key, "report": report}) + "\n")


# ------------------------------------------------------------------ judges
class Judge:
    """One judge process (`python -m grader.batch --serve`), one job at a time."""

    def __init__(self, log: Path, python: str = sys.executable) -> None:
        self.log_path = log
        self.python = python
        self.proc: subprocess.Popen | None = None
        self.buffer = b""

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PACKAGE_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([self.python, "-m", "grader.batch", "--serve"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                         cwd=str(self.log_path.parent), env=env,
                                         start_new_session=True)
        finally:
            log.close()
        self.buffer = b""

    def run(self, job: dict, timeout: float) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            return self._died()
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return {"ok": False, "kind": "timeout",
                        "message": f"grading took longer than {timeout:g} s; the judge was stopped"}
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return self._died()
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        try:
            return json.loads(line)
        except ValueError:
            return {"ok": False, "kind": "error", "message": f"unreadable judge reply {line[:200]!r}"}

    def _died(self) -> dict:
        code = self.proc.poll() if self.proc else None
        self.kill()
        tail = ""
        try:
            tail = self.log_path.read_text(errors="replace")[-800:].strip()
        except OSError:
            pass
        return {"ok": False, "kind": "crashed",
                "message": f"the judge process died (exit status {code})"
                           + (f": {tail.splitlines()[-1]}" if tail else "")}

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        for stream in (proc.stdin, proc.stdout):
            try:
                stream and stream.close()
            except OSError:
                pass

    def close(self) -> None:
        proc = self.proc
        if proc is None:
            return
        try:
            proc.stdin and proc.stdin.close()
            proc.wait(timeout=20)
            self.proc = None
            proc.stdout and proc.stdout.close()
        except (OSError, subprocess.TimeoutExpired):
            self.kill()


def serve() -> None:
    """The judge loop: one JSON job per stdin line, one JSON reply per line on
    the original stdout; anything else printed goes to stderr (the log)."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def stop(*_):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    from grader.sandbox import spawn

    spawn.prewarm()
    from grader import runner
    from grader.submission import Submission

    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        reply: dict = {"id": job.get("id")}
        try:
            exercises = [registry.get(n) for n in job["exercises"]]
            options = runner.GradingOptions(seed=job["seed"], device=job.get("device", "cpu"),
                                            train=job.get("train", True),
                                            max_examples=job.get("max_examples"),
                                            call_timeout=job.get("call_timeout"),
                                            dependencies=job.get("dependencies", "reference"))
            report = runner.grade(job["path"], exercises, options)
            try:
                Submission.from_path(job["path"]).relabel_report(report)
            except GraderError:
                pass
            reply.update(ok=True, report=report.to_dict())
        except GraderError as exc:
            reply.update(ok=False, kind="error", message=exc.message)
        except Exception as exc:  # noqa: BLE001 - one submission's grader error
            traceback.print_exc()
            reply.update(ok=False, kind="error", message=f"grader error: {type(exc).__name__}: {exc}")
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


# ------------------------------------------------------------------ the batch
@dataclass
class BatchOptions:
    exercises: list[int]
    jobs: int = 1
    seed: int = DEFAULT_SEED
    max_examples: int | None = None
    train: bool = True
    device: str = "cpu"
    force: bool = False
    shard: tuple[int, int] | None = None
    cache_dir: Path | None = None
    timeout: float = DEFAULT_TIMEOUT
    call_timeout: float | None = None
    dependencies: str = "reference"   # runner.GradingOptions.dependencies

    def grading(self) -> dict:
        """What changes a grade (part of the cache key)."""
        return {"seed": self.seed, "max_examples": self.max_examples, "train": self.train,
                "device": self.device, "call_timeout": self.call_timeout,
                "dependencies": self.dependencies}


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


def run_batch(root: Path, options: BatchOptions, progress=None) -> tuple[Gradebook, BatchStats]:
    """Grade every submission of `root` (or the shard's slice of them)."""
    from grader.submission import Submission

    started = time.perf_counter()
    stats = BatchStats()
    print_ = fingerprint()
    grading = options.grading()
    cache = Cache(options.cache_dir or root / CACHE_DIR)
    students = take_shard(discover(root), options.shard)
    stats.total = len(students)
    rows: list[Row] = []
    todo: list[dict] = []
    modules = [registry.get(n).module for n in options.exercises]
    max_total = sum(registry.get(n).points for n in options.exercises)
    for student, path in students:
        path = submission_root(path)
        try:
            submission = Submission.from_path(path)
        except GraderError as exc:
            rows.append(Row(student, str(path), "error", note=exc.message, max_total=max_total))
            stats.failed += 1
            continue
        content_hash = submission.content_hash()
        if not any(submission.has(m) for m in modules):
            rows.append(Row(student, str(path), "empty", points={n: 0.0 for n in options.exercises},
                            max_total=max_total, note="no exercise file", content_hash=content_hash))
            stats.empty += 1
            continue
        key = cache_key(content_hash, options.exercises, grading, print_)
        cached = None if options.force else cache.get(key)
        if cached is not None:
            row = row_from_report(student, path, dict(cached, submission=str(path)), content_hash)
            row.cached = True
            rows.append(row)
            stats.cached += 1
            continue
        todo.append({"id": len(todo), "student": student, "path": str(path.resolve()),
                     "label": str(path), "key": key,
                     "hash": content_hash, "exercises": list(options.exercises), **grading})
    if progress:
        progress("start", total=len(students), todo=len(todo), done=len(rows))
    graded_started = time.perf_counter()
    for job, reply in run_jobs(todo, options.jobs, options.timeout, cache.folder.resolve() / "logs"):
        path = Path(job["label"])
        if reply.get("ok"):
            reply["report"]["submission"] = job["label"]
            cache.put(job["key"], reply["report"])
            row = row_from_report(job["student"], path, reply["report"], job["hash"])
            stats.graded += 1
        else:
            row = Row(job["student"], str(path), reply.get("kind", "error"), max_total=max_total,
                      note=reply.get("message", ""), content_hash=job["hash"])
            stats.failed += 1
        rows.append(row)
        if progress:
            progress("row", row=row)
    if todo:
        stats.seconds = time.perf_counter() - graded_started
    book = Gradebook(exercises=list(options.exercises), rows=rows, seed=options.seed,
                     fingerprint=print_,
                     shard=f"{options.shard[0]}/{options.shard[1]}" if options.shard else None,
                     options=grading)
    if progress:
        progress("done", seconds=time.perf_counter() - started)
    return book, stats


def run_jobs(todo: list[dict], jobs: int, timeout: float, logs: Path):
    """Grade `todo` ({"path", "exercises", "seed", ...} each) on `jobs` judge
    processes; yield (job, reply) as they finish.  A reply is {"ok": True,
    "report": {...}} or {"ok": False, "kind": error|timeout|crashed, "message"}."""
    if not todo:
        return
    pending: queue.Queue = queue.Queue()
    for job in todo:
        pending.put(job)
    results: queue.Queue = queue.Queue()
    count = max(1, min(jobs, len(todo)))
    judges = [Judge(logs / f"judge-{i + 1}.log") for i in range(count)]
    stop = threading.Event()

    def slot(judge: Judge) -> None:
        try:
            while not stop.is_set():
                try:
                    job = pending.get_nowait()
                except queue.Empty:
                    return
                try:
                    reply = judge.run({k: v for k, v in job.items()
                                       if k not in ("student", "key", "hash", "label", "meta")}, timeout)
                except Exception as exc:  # noqa: BLE001 - the batch goes on
                    judge.kill()
                    reply = {"ok": False, "kind": "error", "message": f"batch error: {exc}"}
                results.put((job, reply))
        finally:
            judge.close()

    threads = [threading.Thread(target=slot, args=(j,), daemon=True) for j in judges]
    for thread in threads:
        thread.start()
    try:
        for _ in range(len(todo)):
            yield results.get()
    finally:
        stop.set()
        for judge in judges:
            if any(t.is_alive() for t in threads) and judge.proc is not None:
                judge.kill()
        for thread in threads:
            thread.join(timeout=30)


# ------------------------------------------------------------------ commands
import click  # noqa: E402

from grader.authoring.commands import handled  # noqa: E402


def parse_exercises(values: tuple[str, ...]) -> list[int]:
    """`-e 1 -e 2`, `--exercises 1,2,3` or slugs; default: every exercise with hidden tests."""
    keys = [k for v in values for k in v.replace(",", " ").split()]
    if not keys:
        chosen = gradable_exercises()
        if not chosen:
            raise GraderError("no exercise has hidden tests to grade")
        return [e.number for e in chosen]
    chosen = [registry.get(k) for k in keys]
    missing = [e for e in chosen if not hidden_tests_exist(e)]
    if missing:
        raise GraderError(f"no hidden tests for exercise(s) {', '.join(str(e.number) for e in missing)}")
    return sorted({e.number for e in chosen})


class ProgressView:
    """A rich progress bar on a terminal; one line per submission otherwise."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.live = self.console.is_terminal
        self.progress = None
        self.task = None
        self.done = 0
        self.total = 0

    def __call__(self, event: str, **info) -> None:
        if event == "start":
            self.total, self.done = info["total"], info["done"]
            if self.live:
                from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                           TimeElapsedColumn, TimeRemainingColumn)

                self.progress = Progress(TextColumn("[bold]grading"), BarColumn(), MofNCompleteColumn(),
                                         TimeElapsedColumn(), TimeRemainingColumn(),
                                         TextColumn("{task.description}"), console=self.console)
                self.progress.start()
                self.task = self.progress.add_task("", total=self.total, completed=self.done)
            elif info["done"]:
                self.console.print(f"{info['done']} of {self.total} submissions already graded "
                                   "(cached or empty)", highlight=False)
        elif event == "row":
            row: Row = info["row"]
            self.done += 1
            total = "-" if row.total is None else f"{row.total:.2f}".rstrip("0").rstrip(".")
            text = f"{row.student}: {total}/{row.max_total:g} ({row.status})"
            if self.progress is not None:
                self.progress.update(self.task, advance=1, description=text)
            else:
                self.console.print(f"[{self.done}/{self.total}] {text}", highlight=False, markup=False)
        elif event == "done" and self.progress is not None:
            self.progress.stop()


@click.command("batch")
@click.argument("submissions", type=click.Path(path_type=Path))
@click.option("--output", "-o", type=click.Path(path_type=Path), default=Path("grades.csv"),
              show_default=True, help="Gradebook file: .csv (a .json with every report is written "
                                      "beside it) or .json.")
@click.option("--format", "fmt", type=click.Choice(["auto", "csv", "json", "both"]), default="auto",
              show_default=True, help="auto: by the output's suffix (csv also writes the json).")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Judge processes grading in parallel.")
@click.option("--exercises", "-e", "exercise_keys", multiple=True,
              help="Exercises to grade (1,2,3 or repeated); default: all with hidden tests.")
@click.option("--shard", default=None, help="i/n: grade only this deterministic slice (1-based).")
@click.option("--force", is_flag=True, help="Regrade even what the cache already holds.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              help=f"Where reports are cached [default: SUBMISSIONS/{CACHE_DIR}].")
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True,
              help="Hypothesis seed, the same for every student.")
@click.option("--max-examples", type=int, default=None, help="Hypothesis examples per property.")
@click.option("--no-train", is_flag=True, help="Skip the timed training check.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds one submission may take before its judge is stopped.")
@click.option("--call-timeout", type=float, default=None,
              help="Seconds one call into student code may take (default: the grader's).")
@click.option("--dependencies", type=click.Choice(["reference", "own"]), default="reference",
              show_default=True,
              help="What an exercise runs on: the grader's earlier exercises (a bug costs points "
                   "once, where it is) or the student's own files end to end.")
@handled
def batch_command(submissions: Path, output: Path, fmt: str, jobs: int, exercise_keys, shard,
                  force: bool, cache_dir, seed: int, max_examples, no_train: bool, device: str,
                  timeout: float, call_timeout, dependencies: str) -> None:
    """Grade every submission in SUBMISSIONS (one sub-folder or notebook per student)."""
    from grader.cli import resolve_device
    from grader.errors import ExitCode

    options = BatchOptions(exercises=parse_exercises(exercise_keys), jobs=jobs, seed=seed,
                           max_examples=max_examples, train=not no_train,
                           device=resolve_device(device), force=force, shard=parse_shard(shard),
                           cache_dir=cache_dir, timeout=timeout, call_timeout=call_timeout,
                           dependencies=dependencies)
    view = ProgressView()
    book, stats = run_batch(submissions, options, progress=view)
    written = book.write(output, fmt)
    rate = f", {stats.per_minute:.1f} submissions/min with --jobs {jobs}" if stats.graded else ""
    click.echo(f"{stats.total} submissions{' (shard ' + shard + ')' if shard else ''}: "
               f"{stats.graded} graded, {stats.cached} from the cache, {stats.empty} empty, "
               f"{stats.failed} need attention; {stats.seconds:.0f} s grading{rate}", err=True)
    for row in book.sorted_rows():
        if row.status in NEEDS_ATTENTION:
            click.secho(f"  {row.student}: {row.status}: {row.note}", fg="yellow", err=True)
    click.echo("wrote " + ", ".join(map(str, written)), err=True)
    sys.exit(int(ExitCode.SOME_FAILED if stats.failed else ExitCode.ALL_PASSED))


@click.command("merge")
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--output", "-o", type=click.Path(path_type=Path), default=Path("gradebook.csv"),
              show_default=True, help="The merged gradebook (.csv, with a .json beside it, or .json).")
@click.option("--format", "fmt", type=click.Choice(["auto", "csv", "json", "both"]), default="auto",
              show_default=True)
@handled
def merge_command(results, output: Path, fmt: str) -> None:
    """Join the results of `batch --shard i/n` runs (JSON or CSV) into one gradebook."""
    book, warnings = merge(list(results))
    for warning in warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    written = book.write(output, fmt)
    click.echo(f"merged {len(results)} result files, {len(book.rows)} students: wrote "
               + ", ".join(map(str, written)), err=True)


if __name__ == "__main__":  # pragma: no cover - the judge process
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        sys.exit("usage: python -m grader.batch --serve  (use `attn-grade batch` instead)")
