"""Run the hidden tests of each exercise against a submission.

For each exercise: a worker process (which alone imports the submission) is
started, the hidden test module runs through `pytest.main(..., plugins=[...])`
in this (judge) process, and a collector plugin turns pytest's reports into
`TestResult`s.  A pass counts only on the `call` phase; setup and teardown
errors are recorded.  Workers for the next exercise start while the current
one is graded, so torch's import time is paid in parallel.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from grader import __version__, hints, registry
from grader.errors import InternalError
from grader.outcomes import (
    AbortedInSetup,
    PropertyFailure,
    StudentAbort,
    StudentError,
    StudentForbidden,
    StudentLoadError,
    StudentNotImplemented,
)
from grader.registry import Exercise
from grader.results import (
    ExerciseResult,
    Report,
    Status,
    TestResult,
    exercise_status,
    split_points,
)
from grader.sandbox.client import StudentModule, WorkerClient
from grader.submission import Submission

HIDDEN_DIR = Path(__file__).resolve().parent / "hidden"
CONTEXT_PLUGIN = "attn_grade_context"
MAX_MESSAGE = 4000

Progress = Callable[..., None]


@dataclass
class GradingOptions:
    seed: int | None = None
    device: str = "cpu"              # "cpu" or "cuda" (resolved from "auto" by the CLI)
    max_examples: int | None = None  # hypothesis examples per property (None: the test's own)
    train: bool = True               # run exercise 8's timed training check
    amp: str | None = None           # training check: None (the device default), "off", "bf16", "fp16"
    call_timeout: float | None = None
    extra: dict = field(default_factory=dict)

    def resolved_seed(self) -> int:
        if self.seed is None:
            self.seed = random.SystemRandom().randrange(1, 2**31)
        return self.seed


class GradingContext:
    """What the hidden tests' conftest needs, handed over as a pytest plugin."""

    def __init__(self, exercise: Exercise, submission: Submission, client: WorkerClient | None,
                 options: GradingOptions, precheck: StudentAbort | None) -> None:
        self.exercise = exercise
        self.submission = submission
        self.client = client
        self.options = options
        self.precheck = precheck
        self.extra: dict = {}   # tests may leave figures here (the training check)
        self.notes: list[str] = []   # non-scoring warnings for the student (ExerciseResult.notes)

    @property
    def seed(self) -> int:
        return int(self.options.seed or 0)

    @property
    def device(self) -> str:
        return self.options.device

    def student(self) -> StudentModule:
        if self.precheck is not None:
            raise self.precheck
        assert self.client is not None
        self.client.load()
        self.client.reset(self.seed)
        return StudentModule(self.client, self.exercise.module)


class Collector:
    """pytest plugin: one `TestResult` per hidden test."""

    def __init__(self, exercise: Exercise, progress: Progress | None = None) -> None:
        self.exercise = exercise
        self.progress = progress
        self.records: dict[str, dict] = {}
        self.order: list[str] = []
        self.collect_errors: list[str] = []

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        record = self.records.get(item.nodeid)
        if record is None:
            marker = item.get_closest_marker("weight")
            doc = (getattr(item, "function", None).__doc__ or "").strip() if hasattr(item, "function") else ""
            record = {"name": _test_name(item), "weight": float(marker.args[0]) if marker else 1.0,
                      "description": doc.splitlines()[0] if doc else "", "status": None,
                      "duration": 0.0, "phase": ""}
            self.records[item.nodeid] = record
            self.order.append(item.nodeid)
        record["duration"] += getattr(report, "duration", 0.0)
        if record["status"] not in (None, Status.PASSED):
            return  # the first failure decides (teardown after a failed call adds nothing)
        if report.passed:
            if call.when == "call":
                record["status"] = Status.PASSED
                record["phase"] = "call"
            return
        if report.skipped:
            record.update(status=Status.NOT_RUN, phase=call.when,
                          message=_skip_reason(report))
            return
        record.update(_describe_failure(call.excinfo, self.exercise))
        record["phase"] = call.when

    def pytest_runtest_logfinish(self, nodeid, location):
        record = self.records.get(nodeid)
        if record is not None and self.progress:
            self.progress("test", exercise=self.exercise, name=record["name"],
                          status=record["status"] or Status.ERROR)

    def pytest_collectreport(self, report):
        if report.failed:
            self.collect_errors.append(str(report.longrepr)[-MAX_MESSAGE:])

    def pytest_collection_finish(self, session):
        if self.progress:
            self.progress("collected", exercise=self.exercise, count=len(session.items))

    def results(self, max_points: float) -> list[TestResult]:
        records = [self.records[n] for n in self.order]
        points = split_points([r["weight"] for r in records], max_points)
        results = []
        for record, share in zip(records, points):
            status = record["status"] or Status.ERROR
            results.append(TestResult(
                name=record["name"], status=status,
                points=share if status is Status.PASSED else 0.0, max_points=share,
                message=record.get("message", ""), description=record["description"],
                hint=record.get("hint", ""), example=record.get("example", ""),
                traceback=record.get("traceback", ""), duration=round(record["duration"], 4),
                phase=record["phase"] or "call"))
        return results


def _test_name(item) -> str:
    name = item.name
    return name[5:] if name.startswith("test_") else name


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _describe_failure(excinfo, exercise: Exercise) -> dict:
    """Turn an exception into status, message, hint, example and traceback."""
    exc = excinfo.value if excinfo is not None else None
    if isinstance(exc, AbortedInSetup):
        exc = exc.abort
    notes = "\n".join(getattr(exc, "__notes__", []) or [])
    example = _falsifying_example(notes)
    if isinstance(exc, (StudentAbort, StudentError)):
        message = exc.message
        if isinstance(exc, StudentError) and exc.type_name:
            message = f"{exc.type_name}: {message}"
        where = getattr(exc, "where", None)
        if where and where[0] != exercise.file:
            other = registry.by_module(Path(where[0]).stem)
            if other is not None and other.number != exercise.number:
                message += (f"\n(raised inside {where[0]}, exercise {other.number}: fix exercise "
                            f"{other.number} first if it fails its own tests; otherwise check what "
                            f"your code passes to it)")
        hint = ""
        if isinstance(exc, StudentNotImplemented):
            hint = "Implement it: replace the `raise NotImplementedError` under the TODO."
        elif isinstance(exc, StudentForbidden):
            hint = "Write it yourself from the equation; the built-in is what the exercise teaches."
        elif isinstance(exc, StudentError):
            hint = hints.error_hint(message)
        return {"status": exc.status, "message": message[:MAX_MESSAGE], "hint": hint,
                "example": example, "traceback": exc.traceback[-MAX_MESSAGE:]}
    if isinstance(exc, PropertyFailure):
        return {"status": Status.FAILED, "message": exc.message[:MAX_MESSAGE], "hint": exc.hint,
                "example": example, "traceback": ""}
    if isinstance(exc, AssertionError):
        return {"status": Status.FAILED, "message": (str(exc) or "assertion failed")[:MAX_MESSAGE],
                "hint": "", "example": example, "traceback": ""}
    if exc is None:
        return {"status": Status.ERROR, "message": "unknown failure", "hint": "", "example": "",
                "traceback": ""}
    # The grader's own code choked on what the submission returned (a tuple
    # where a tensor was expected...): the submission's answer is wrong.
    return {"status": Status.FAILED,
            "message": f"the result could not be checked: {type(exc).__name__}: {exc}"[:MAX_MESSAGE],
            "hint": "Check the return type and shape against the contract.",
            "example": example, "traceback": ""}


def _falsifying_example(notes: str) -> str:
    # hypothesis < 6.1xx says "Falsifying example", newer ones "Failing test case".
    starts = [notes.index(m) for m in ("Falsifying example", "Failing test case") if m in notes]
    if not starts:
        return ""
    text = notes[min(starts):]
    lines = [ln for ln in text.splitlines() if "student=" not in ln and "ctx=" not in ln]
    return "\n".join(lines)[:MAX_MESSAGE]


# ---------------------------------------------------------------------- grading
def precheck(submission: Submission, exercise: Exercise) -> StudentAbort | None:
    """What can be decided without running anything."""
    if not submission.has(exercise.module):
        return StudentNotImplemented(
            f"{exercise.file} (or {exercise.notebook}) is not in the submission")
    problem = submission.syntax_error(exercise.module)
    if problem:
        return StudentLoadError(problem)
    forbidden: list[str] = []
    for module in [exercise.module, *sorted(submission.imports_closure(exercise.module))]:
        if exercise.forbidden_scope and module != exercise.module:
            continue
        forbidden += submission.forbidden_uses(module, exercise.forbidden, exercise.forbidden_scope)
    if forbidden:
        return StudentForbidden(
            f"uses {', '.join(forbidden)}, which this exercise asks you to write yourself")
    return None


def make_client(exercise: Exercise, staging: Path, options: GradingOptions) -> WorkerClient:
    kwargs = {}
    if options.call_timeout:
        kwargs["call_timeout"] = options.call_timeout
    return WorkerClient(staging, [exercise.module], forbidden=exercise.forbidden,
                        forbidden_scope=exercise.forbidden_scope, device=options.device, **kwargs)


def run_hidden_tests(exercise: Exercise, context: GradingContext,
                     progress: Progress | None = None) -> tuple[list[TestResult], dict]:
    test_file = HIDDEN_DIR / exercise.test_module
    if not test_file.exists():
        raise InternalError(f"no hidden tests for exercise {exercise.number} ({test_file.name})")
    collector = Collector(exercise, progress)
    args = [str(test_file), "-c", str(HIDDEN_DIR / "pytest.ini"), "--rootdir", str(HIDDEN_DIR),
            "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:xdist", "-p", "no:capture",
            "-q", "--no-header", "-W", "ignore", "--assert=plain", f"--hypothesis-seed={context.seed}"]
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        code = pytest.main(args, plugins=[collector, _NamedPlugin(context)])
    if collector.collect_errors or code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        detail = "\n".join(collector.collect_errors) or sink.getvalue()[-MAX_MESSAGE:]
        raise InternalError(f"the hidden tests of exercise {exercise.number} did not run:\n{detail}")
    if not collector.order:
        raise InternalError(f"no hidden tests collected for exercise {exercise.number}")
    return collector.results(exercise.points), context.extra


class _NamedPlugin:
    """Registers the context under a fixed name so conftest can find it."""

    def __init__(self, context: GradingContext) -> None:
        self.context = context

    def pytest_configure(self, config):
        config.pluginmanager.register(self.context, CONTEXT_PLUGIN)


def grade(submission_path: str | os.PathLike, exercises: list[Exercise],
          options: GradingOptions | None = None, progress: Progress | None = None) -> Report:
    """Grade `exercises` of the submission at `submission_path`."""
    options = options or GradingOptions()
    seed = options.resolved_seed()
    started = time.perf_counter()
    submission = Submission.from_path(submission_path)
    report = Report(submission=str(submission_path), seed=seed, grader_version=__version__,
                    device=options.device)
    import torch

    judge_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the judge's oracles are tiny too
    workdir = Path(tempfile.mkdtemp(prefix="attn-grade-"))
    staging = submission.stage(workdir / "submission")
    prechecks = {ex.number: precheck(submission, ex) for ex in exercises}
    clients: dict[int, WorkerClient] = {}

    def client_for(index: int) -> WorkerClient | None:
        if index >= len(exercises):
            return None
        ex = exercises[index]
        if prechecks[ex.number] is not None:
            return None
        if ex.number not in clients:
            clients[ex.number] = make_client(ex, staging, options)
            clients[ex.number].start()
        return clients[ex.number]

    try:
        for index, exercise in enumerate(exercises):
            if progress:
                progress("exercise_start", exercise=exercise)
            t0 = time.perf_counter()
            client = client_for(index)
            client_for(index + 1)  # start the next worker while this one is graded
            context = GradingContext(exercise, submission, client, options, prechecks[exercise.number])
            old_cwd = os.getcwd()
            os.chdir(workdir)
            try:
                tests, extra = run_hidden_tests(exercise, context, progress)
            finally:
                os.chdir(old_cwd)
                if client is not None:
                    client.close()
            result = ExerciseResult(
                number=exercise.number, slug=exercise.slug, title=exercise.title,
                status=exercise_status(tests), points=0.0, max_points=exercise.points, tests=tests,
                duration=time.perf_counter() - t0,
                output=client.output_text() if client is not None else "", extra=extra,
                notes=list(dict.fromkeys(context.notes)))
            if result.status is Status.FORBIDDEN:
                for test in tests:  # a forbidden call costs the whole exercise
                    test.points = 0.0
            result.points = sum(t.points for t in tests)
            report.exercises.append(result)
            if progress:
                progress("exercise_done", exercise=exercise, result=result)
        add_dependency_notes(report, submission)
        submission.relabel_report(report)  # notebook lines read "cell N, line M"
    finally:
        for client in clients.values():
            client.close()
        shutil.rmtree(workdir, ignore_errors=True)
        torch.set_num_threads(judge_threads)
    report.duration = time.perf_counter() - started
    return report


def add_dependency_notes(report: Report, submission: Submission) -> None:
    """When an exercise imports an earlier one that fails its own tests, say
    so: the failure may come from there."""
    status = {r.number: r.status for r in report.exercises}
    for result in report.exercises:
        if result.status is Status.PASSED:
            continue
        exercise = registry.get(result.number)
        if not submission.has(exercise.module):
            continue
        for module in sorted(submission.imports_closure(exercise.module)):
            dep = registry.by_module(module)
            if dep is None:
                continue
            if dep.number in status and status[dep.number] is not Status.PASSED:
                result.notes.append(
                    f"{exercise.file} imports {dep.file}, and exercise {dep.number} fails its own "
                    f"tests: fix exercise {dep.number} first (attn-grade exercise {dep.number}).")
            elif dep.number not in status:
                result.notes.append(
                    f"{exercise.file} imports {dep.file}: if the failures come from there, "
                    f"run attn-grade exercise {dep.number}.")


