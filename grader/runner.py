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
import dataclasses
import io
import os
import random
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from grader import counterexample, dependencies, fingerprint, hints, reference, registry
from grader.version import __version__
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
from grader.sandbox import isolation
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
    # "reference": each exercise runs on the grader's own earlier exercises
    # (grader/reference/), so a bug costs points once; "own": on the
    # student's own files end to end.  See grader/dependencies.py.
    dependencies: str = "reference"
    # A fixed time budget (s) for the training check instead of one calibrated
    # on this machine: tests set it so that no verdict depends on machine load.
    training_budget_s: float | None = None
    # Also run each exercise quickly on the student's own earlier files and
    # report how it fares (never scored).  Off where the earlier files are
    # known to be the reference anyway (the harness's fixture tests).
    own_stack: bool = True
    extra: dict = field(default_factory=dict)

    def resolved_seed(self) -> int:
        if self.seed is None:
            self.seed = random.SystemRandom().randrange(1, 2**31)
        return self.seed


class GradingContext:
    """What the hidden tests' conftest needs, handed over as a pytest plugin."""

    def __init__(self, exercise: Exercise, submission: Submission, client: WorkerClient | None,
                 options: GradingOptions, precheck: StudentAbort | None,
                 stagings: "Stagings | None" = None) -> None:
        self.exercise = exercise
        self.submission = submission
        self.client = client
        self.options = options
        self.precheck = precheck
        self.stagings = stagings
        self.extra: dict = {}   # tests may leave figures here (the training check)
        self.notes: list[str] = []   # non-scoring warnings for the student (ExerciseResult.notes)
        self._own_client: WorkerClient | None = None

    def own_stack_client(self) -> WorkerClient | None:
        """A worker on the student's own files end to end (exercise 8's
        training check trains the student's whole stack): the graded worker
        itself in `own` mode, else one more, closed with the context."""
        if self.options.dependencies == "own" or self.stagings is None or self.client is None:
            return self.client
        if self._own_client is None:
            self._own_client = make_client(self.exercise, self.stagings.own(), self.options)
            self._own_client.start()
        return self._own_client

    def close(self) -> None:
        if self._own_client is not None:
            self._own_client.close()
            self._own_client = None

    @property
    def seed(self) -> int:
        return int(self.options.seed or 0)

    @property
    def device(self) -> str:
        return self.options.device

    def student(self) -> StudentModule:
        counterexample.LOG.clear()   # a new test: its own calls make its counterexample
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
                      "description": _first_paragraph(doc), "status": None,
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
                phase=record["phase"] or "call", counterexample=record.get("counterexample"),
                repro=counterexample.with_header(record.get("repro", ""), self.exercise.number,
                                                 record["name"])))
        return results


def _first_paragraph(doc: str) -> str:
    """The property a test checks: its docstring's first paragraph, whole
    (its first line alone may stop mid-sentence)."""
    paragraph = doc.strip().split("\n\n")[0]
    return " ".join(paragraph.split())


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
                message += (f"\n(raised inside {where[0]}, your exercise {other.number}; if it "
                            "passes its own tests, check what your code passes to it)")
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
                "example": example, "traceback": "",
                "counterexample": getattr(exc, "counterexample", None), "repro": getattr(exc, "repro", "")}
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


# hypothesis < 6.1xx says "Falsifying example", newer ones "Failing test case";
# an @example that fails (the seed-stable first cases) is an "explicit example".
_FAILING_CASE = re.compile(r"(?:Falsifying|Failing) (?:explicit )?(?:example|test case)")


def _falsifying_example(notes: str) -> str:
    found = _FAILING_CASE.search(notes)
    if not found:
        return ""
    text = notes[found.start():]
    lines = [ln for ln in text.splitlines() if "student=" not in ln and "ctx=" not in ln]
    return "\n".join(_compact_arguments(lines))[:MAX_MESSAGE]


def _compact_arguments(lines: list[str], width: int = 100) -> list[str]:
    """hypothesis prints each field of a case on its own line; put a case
    back on one line (`case=AttentionCase(batch=(2,), lq=3, ..., seed=11),`)
    when it fits, keeping one line per argument of the test."""
    out: list[str] = []
    depth = 0                      # open parentheses before the current line
    for line in lines:
        if out and depth >= 2 and len(out[-1]) + 1 + len(line.strip()) <= width:
            out[-1] += " " + line.strip()
        else:
            out.append(line)
        depth += line.count("(") - line.count(")")
    return out


# ---------------------------------------------------------------------- grading
def precheck(submission: Submission, exercise: Exercise,
             mode: str = "reference") -> StudentAbort | None:
    """What can be decided without running anything.  In `reference` mode
    only the exercise's own file is scanned: the earlier exercises it runs
    on are the grader's."""
    if not submission.has(exercise.module):
        return StudentNotImplemented(
            f"{exercise.file} (or {exercise.notebook}) is not in the submission")
    problem = submission.syntax_error(exercise.module)
    if problem:
        return StudentLoadError(problem)
    # The student's files this exercise loads: in `reference` mode its
    # earlier exercises are the grader's, so only helper files count.
    closure = submission.local_imports_closure(exercise.module)
    if mode != "own":
        closure = {m for m in closure if registry.by_module(m) is None}
    modules = [exercise.module, *sorted(closure)]
    forbidden: list[str] = []
    for module in modules:
        if exercise.forbidden_scope and module != exercise.module:
            continue
        forbidden += submission.forbidden_uses(module, exercise.forbidden, exercise.forbidden_scope)
    if forbidden:
        return StudentForbidden(
            f"uses {', '.join(forbidden)}, which this exercise asks you to write yourself")
    grader_code = submission.grader_imports(exercise.module)
    if grader_code:
        return StudentForbidden(
            f"imports {', '.join(grader_code)}: the grader's own code, which a submission may "
            "not use (an instructor should review this file)")
    reflective = [found for module in modules for found in submission.reflective_uses(module)]
    if reflective:
        return StudentForbidden(
            f"uses {'; '.join(reflective[:5])}: reflection that can reach around the grader's "
            "checks, which no exercise needs. An instructor should review this submission.")
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
            "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:xdist", "-p", "no:capture", "-p", "no:unraisableexception", "-p", "no:threadexception",
            "-q", "--no-header", "-W", "ignore", "--assert=plain", "--tb=native", f"--hypothesis-seed={context.seed}"]
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        code = pytest.main(args, plugins=[collector, _NamedPlugin(context)])
    if code == pytest.ExitCode.INTERRUPTED:
        # pytest turns Ctrl-C into an exit status; the caller (watch, batch,
        # a notebook) must stop, not show what was graded so far as a result.
        raise KeyboardInterrupt
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


class Stagings:
    """The folders workers import the submission from (temporary copies; the
    submission itself is never written to): one per exercise graded in
    isolation (its own file + the grader's earlier exercises), and one of the
    student's own files end to end."""

    def __init__(self, submission: Submission, workdir: Path, mode: str) -> None:
        if mode not in dependencies.MODES:
            raise ValueError(f"unknown dependencies mode {mode!r} ({' or '.join(dependencies.MODES)})")
        self.submission = submission
        self.workdir = workdir
        self.mode = mode
        self._folders: dict[str, Path] = {}

    def folders(self) -> list[Path]:
        """Every staging folder made so far."""
        return list(self._folders.values())

    def own(self) -> Path:
        if "" not in self._folders:
            self._folders[""] = self.submission.stage(self.workdir / "own")
        return self._folders[""]

    def graded(self, exercise: Exercise) -> Path:
        """Where `exercise` is graded from, by the run's mode.  Exercise 8
        has no later use of its own and its training check trains the
        student's own stack: it is staged like the others (the check asks
        for its own worker, GradingContext.own_stack_client)."""
        if self.mode == "own":
            return self.own()
        if exercise.module not in self._folders:
            imports = (self.submission.sibling_imports(exercise.module)
                       if self.submission.has(exercise.module) else set())
            self._folders[exercise.module] = self.submission.stage(
                self.workdir / exercise.module, reference.provided_for(exercise, imports))
        return self._folders[exercise.module]


def grade_exercise(exercise: Exercise, submission: Submission, client: WorkerClient | None,
                   options: GradingOptions, check: StudentAbort | None, stagings: Stagings,
                   workdir: Path, progress: Progress | None = None) -> ExerciseResult:
    """One exercise's hidden tests against the worker `client` (None: the
    precheck `check` decides every test)."""
    t0 = time.perf_counter()
    context = GradingContext(exercise, submission, client, options, check, stagings)
    try:
        tests, extra = run_hidden_tests(exercise, context, progress)
    finally:
        context.close()
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
    return result


def become_judge_process() -> None:
    """For a process that only judges (the CLI, a batch judge): the oracles'
    tensors are tiny, so one torch thread is fastest.  `grade` itself never
    changes its caller's settings (notebooks and tests call it in-process)."""
    import torch

    torch.set_num_threads(1)


def grade(submission_path: str | os.PathLike, exercises: list[Exercise],
          options: GradingOptions | None = None, progress: Progress | None = None) -> Report:
    """Grade `exercises` of the submission at `submission_path`."""
    options = options or GradingOptions()
    seed = options.resolved_seed()
    started = time.perf_counter()
    judge_files = fingerprint.freeze_judge([e.test_module for e in exercises])  # before any worker
    submission = Submission.from_path(submission_path)
    submission.require_exercise_files()
    report = Report(submission=submission.label, seed=seed, grader_version=__version__,
                    device=options.device, dependencies=options.dependencies,
                    grader_fingerprint=judge_files.digest)
    workdir = Path(tempfile.mkdtemp(prefix="attn-grade-"))
    stagings = Stagings(submission, workdir, options.dependencies)
    prechecks = {ex.number: precheck(submission, ex, options.dependencies) for ex in exercises}
    clients: dict[int, WorkerClient] = {}

    def client_for(index: int) -> WorkerClient | None:
        if index >= len(exercises):
            return None
        ex = exercises[index]
        if prechecks[ex.number] is not None:
            return None
        if ex.number not in clients:
            clients[ex.number] = make_client(ex, stagings.graded(ex), options)
            clients[ex.number].start()
        return clients[ex.number]

    try:
        for index, exercise in enumerate(exercises):
            if progress:
                progress("exercise_start", exercise=exercise)
            client = client_for(index)
            client_for(index + 1)  # start the next worker while this one is graded
            result = grade_exercise(exercise, submission, client, options, prechecks[exercise.number],
                                    stagings, workdir, progress)
            report.exercises.append(result)
            if progress:
                progress("exercise_done", exercise=exercise, result=result)
        if options.own_stack:
            OwnStackRuns(submission, options, stagings, workdir).annotate(report)
        submission.relabel_report(report)  # notebook lines read "cell N, line M"
        name_student_files(report, submission, stagings.folders())
    finally:
        for client in clients.values():
            client.close()
        shutil.rmtree(workdir, ignore_errors=True)
    fingerprint.verify(judge_files)  # changed while grading: GraderChanged, exit code 3
    sandbox = isolation.weakest(c.sandbox for c in clients.values()) or isolation.detect_level()
    report.sandbox = sandbox.to_dict()
    report.duration = time.perf_counter() - started
    return report


class OwnStackRuns:
    """The non-scoring side of grading (grader/dependencies.py): each graded
    exercise that imports earlier ones is run once more, quickly, on the
    student's own earlier files, and an earlier exercise not graded in this
    run gets a quick pre-check of its own, so the line can say whether it
    fails its own tests."""

    def __init__(self, submission: Submission, options: GradingOptions, stagings: Stagings,
                 workdir: Path) -> None:
        self.submission = submission
        self.options = options
        self.stagings = stagings
        self.workdir = workdir
        self.quick = dataclasses.replace(
            options, train=False, extra={},
            max_examples=min(options.max_examples or dependencies.QUICK_EXAMPLES,
                             dependencies.QUICK_EXAMPLES))
        self.statuses: dict[int, Status] = {}

    def _run(self, exercise: Exercise, mode: str) -> list[TestResult]:
        options = dataclasses.replace(self.quick, dependencies=mode)
        check = precheck(self.submission, exercise, mode)
        folder = self.stagings.own() if mode == "own" else self.stagings.graded(exercise)
        client = None
        if check is None:
            client = make_client(exercise, folder, options)
            client.start()
        return grade_exercise(exercise, self.submission, client, options, check, self.stagings,
                              self.workdir).tests

    def status_of(self, number: int) -> Status:
        """Exercise `number`'s own verdict: from this run, or a quick pre-check."""
        if number not in self.statuses:
            exercise = registry.get(number)
            if not self.submission.has(exercise.module):
                self.statuses[number] = Status.NOT_IMPLEMENTED
            else:
                self.statuses[number] = exercise_status(self._run(exercise, self.stagings.mode))
        return self.statuses[number]

    def annotate(self, report: Report) -> None:
        for result in report.exercises:
            self.statuses[result.number] = result.status
        for result in report.exercises:
            exercise = registry.get(result.number)
            imports = dependencies.imported_exercises(self.submission, exercise)
            if exercise.number == 8:
                self._training_check(result)
                continue
            if not imports or (self.stagings.mode == "reference" and result.status in (
                    Status.FORBIDDEN, Status.NOT_IMPLEMENTED)):
                continue   # nothing to add: the exercise itself does not run
            own_tests = None
            if self.stagings.mode == "reference" and prechecks_pass(self.submission, exercise):
                own_tests = self._run(exercise, "own")
            summary = dependencies.own_stack_line(exercise, self.stagings.mode, imports,
                                                  self.status_of, own_tests, result.tests)
            result.extra["own_stack"] = summary.to_dict()
            if summary.line:
                result.notes.append(summary.line)

    def _training_check(self, result: ExerciseResult) -> None:
        """Exercise 8's timed training check trains the student's own stack:
        when it fails (an error says where it was raised already), name the
        earlier exercise that fails its own tests."""
        check = next((t for t in result.tests if t.name == TRAINING_CHECK), None)
        if check is None or check.status is not Status.FAILED:
            return
        stack = registry.get(7)
        imports = sorted({stack.number, *dependencies.imported_exercises(self.submission, stack)})
        statuses = {n: self.status_of(n) for n in imports}
        line = dependencies.training_check_blame(imports, statuses)
        if line:
            check.message = f"{check.message}\n{line}"[:MAX_MESSAGE]
            result.notes.append(line)


TRAINING_CHECK = "trains_the_transformer_to_target_in_time"


def prechecks_pass(submission: Submission, exercise: Exercise) -> bool:
    """Whether the student's file can run at all (else the graded run said it all)."""
    return submission.has(exercise.module) and not submission.syntax_error(exercise.module)


def name_student_files(report: Report, submission: Submission, stagings: list[Path]) -> None:
    """Warnings and tracebacks printed by the worker name a staged copy
    (`/tmp/attn-grade-x/ex01_attention/ex01_attention.py`): show the
    student's own file instead."""
    folders = {str(f) for f in stagings} | {os.path.realpath(f) for f in stagings}
    if not folders:
        return
    pattern = re.compile("(?:" + "|".join(re.escape(f) for f in sorted(folders, key=len, reverse=True))
                         + r")[/\\]([\w.-]+)")

    def swap(match: re.Match) -> str:
        name = match.group(1)
        source = submission.files.get(Path(name).stem)
        return source.origin if source is not None and name.endswith(".py") else name

    for result in report.exercises:
        result.output = pattern.sub(swap, result.output)
        for test in result.tests:
            test.message = pattern.sub(swap, test.message)
            test.traceback = pattern.sub(swap, test.traceback)
