"""`attn-grade verify`: a self-check of the test bank.

1. solutions/ must get full marks on every exercise that has hidden tests;
2. the generated stubs must score 0, every test "not implemented";
3. every mutant in the mutants folder (default: the harness's own
   tests/fixtures/exNN/) is graded on its exercise, inside a copy of
   solutions/ (so its dependencies are right):
   - `wrong_*` and `hostile_*` must lose points (a "killed" mutant),
   - `correct_*` must get full marks,
   - header comments state more (`# expect-status: failed`,
     `# expect-test-status: timeout`, `# expect-message: sqrt(d_k)`,
     `# expect-max-points: 5`, `# expect-note: float16`,
     `# expect-no-message: sin and cos swapped` (a hint that must not be given), and
     `# expect-hint: no_scale`, the key in grader/hints.py of the hint that
     names the bug; without it, `expect-message` is what names the bug) and options (`# max-examples: 10`, `# timeout: 3`);
   - with `--seeds N` every mutant is graded with N seeds and must get the
     same points with each (correct ones: full marks with each).
Tests that were deliberately not run (exercise 8's training check without
`--train`) are held against nobody.
It prints which tests caught which mutant and, per exercise, the share of
correct styles accepted, of mutants killed, of killed mutants whose hint
names the bug, and of mutants graded alike on every seed; it fails (exit 1)
when any check fails.  Gradings run on the same judge processes as
`attn-grade batch` (--jobs N in parallel).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


from grader import hints, registry
from grader.course import PUBLIC_COURSE_SEED
from grader.render.points import score_text
from grader.errors import GraderError
from grader.registry import Exercise

HEADER = re.compile(r"^#\s*(expect-[\w-]+|max-examples|timeout|dependencies)\s*:\s*(.+?)\s*$",
                    re.M)
KINDS = ("correct", "wrong", "hostile")
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Mutant:
    exercise: Exercise
    path: Path                       # a file (.py / .ipynb) or a folder of files

    @property
    def kind(self) -> str:
        return self.path.name.split("_", 1)[0]

    @property
    def name(self) -> str:
        return f"ex{self.exercise.number:02d}/{self.path.name}"

    def header(self) -> list[tuple[str, str]]:
        main = self.path / self.exercise.file if self.path.is_dir() else self.path
        if main.suffix != ".py" or not main.is_file():
            return []
        return HEADER.findall(main.read_text(encoding="utf-8", errors="replace"))

    def expected_hints(self) -> list[str]:
        """The texts of the hints this mutant declares (`# expect-hint: key`)."""
        return [hints.hint(value) for key, value in self.header() if key == "expect-hint"]

    def options(self) -> dict:
        found: dict = {}
        for key, value in self.header():
            if key == "max-examples":
                found["max_examples"] = int(value)
            elif key == "timeout":
                found["call_timeout"] = float(value)
            elif key == "dependencies":   # "own": graded on its own earlier files end to end
                found["dependencies"] = value
        return found

    def build(self, base: Path, dest: Path) -> Path:
        """A submission: a copy of `base` (the solutions) with this mutant in."""
        dest.mkdir(parents=True)
        for item in base.glob("*.py"):
            shutil.copy(item, dest / item.name)
        if self.path.is_dir():
            for item in self.path.iterdir():
                if item.suffix in (".py", ".ipynb"):
                    shutil.copy(item, dest / item.name)
        elif self.path.suffix == ".ipynb":
            (dest / self.exercise.file).unlink(missing_ok=True)
            shutil.copy(self.path, dest / self.exercise.notebook)
        else:
            shutil.copy(self.path, dest / self.exercise.file)
        return dest


def find_mutants(folder: Path, exercises: list[Exercise]) -> list[Mutant]:
    wanted = {e.number: e for e in exercises}
    found: list[Mutant] = []
    for sub in sorted(folder.glob("ex[0-9][0-9]")):
        exercise = wanted.get(int(sub.name[2:]))
        if exercise is None:
            continue
        for path in sorted(sub.iterdir()):
            if path.name.startswith(tuple(f"{k}_" for k in KINDS)) and (
                    path.is_dir() or path.suffix in (".py", ".ipynb")):
                found.append(Mutant(exercise, path))
    return found


# ------------------------------------------------------------------ checks
@dataclass
class Check:
    group: str                 # solutions, stubs, mutants
    exercise: int
    name: str
    ok: bool
    points: float | None = None
    max_points: float = 0.0
    caught_by: list[str] = field(default_factory=list)   # failing tests (name: status)
    problems: list[str] = field(default_factory=list)
    kind: str = ""
    points_by_seed: list[float] = field(default_factory=list)
    hint_named: bool | None = None     # killed mutants: does a failing test's hint name the bug?

    @property
    def seed_stable(self) -> bool:
        return len(set(round(p, 3) for p in self.points_by_seed)) <= 1


NOT_RUN = "not_run"     # Status.NOT_RUN: deliberately not run (the training check without --train)
EPS = 1e-3              # reports round points to 4 decimals


def _runnable_points(ex: dict) -> float:
    """Full marks, less the tests that were deliberately not run."""
    return ex["max_points"] - sum(t.get("max_points", 0.0) for t in ex["tests"] if t["status"] == NOT_RUN)


def _result_checks_full(group: str, name: str, report: dict, numbers: list[int]) -> list[Check]:
    checks = []
    by_number = {e["number"]: e for e in report["exercises"]}
    for number in numbers:
        ex = by_number.get(number)
        if ex is None:
            checks.append(Check(group, number, name, False, problems=["not graded"]))
            continue
        failing = [f"{t['name']}: {t['status']}" for t in ex["tests"]
                   if t["status"] not in ("passed", NOT_RUN)]
        ok = not failing and abs(ex["points"] - _runnable_points(ex)) < EPS
        checks.append(Check(group, number, name, ok, ex["points"], ex["max_points"], failing,
                            [] if ok else [f"expected full marks: {'; '.join(failing)[:300]}"]))
    return checks


def _result_checks_stub(name: str, report: dict, numbers: list[int]) -> list[Check]:
    checks = []
    by_number = {e["number"]: e for e in report["exercises"]}
    for number in numbers:
        ex = by_number.get(number)
        if ex is None:
            checks.append(Check("stubs", number, name, False, problems=["not graded"]))
            continue
        others = [f"{t['name']}: {t['status']}" for t in ex["tests"]
                  if t["status"] not in ("not_implemented", NOT_RUN)]
        ok = ex["points"] == 0 and not others
        problems = []
        if ex["points"]:
            problems.append(f"the stub scores {ex['points']:g} points")
        if others:
            problems.append("not 'not implemented': " + "; ".join(others)[:300])
        checks.append(Check("stubs", number, name, ok, ex["points"], ex["max_points"], [], problems))
    return checks


def _mutant_check(mutant: Mutant, reports: list[dict]) -> Check:
    """The verdict on one mutant from its reports, one per seed (the first decides
    the points shown; every seed must give the same points)."""
    number = mutant.exercise.number
    graded = [next((e for e in r["exercises"] if e["number"] == number), None) for r in reports]
    if not graded or any(ex is None for ex in graded):
        return Check("mutants", number, mutant.name, False, problems=["not graded"], kind=mutant.kind)
    ex = graded[0]
    failing = [t for t in ex["tests"] if t["status"] not in ("passed", NOT_RUN)]
    caught = [f"{t['name']} ({t['status']})" for t in failing]
    problems: list[str] = []
    full = not failing and abs(ex["points"] - _runnable_points(ex)) < EPS
    if mutant.kind == "correct":
        if not full:
            problems.append("a correct variant lost points: " + "; ".join(caught)[:300])
    elif ex["points"] >= _runnable_points(ex) - EPS:
        problems.append("SURVIVED: no test caught this mutant")
    text = " ".join([f"{t.get('message', '')} {t.get('hint', '')}" for t in failing]
                    + list(ex.get("notes", []))).lower()
    hint_text = " ".join(t.get("hint", "") for t in failing).lower()
    for key, value in mutant.header():
        if key == "expect-status" and ex["status"] != value:
            problems.append(f"expected status {value}, got {ex['status']}")
        elif key == "expect-test-status" and not any(t["status"] == value for t in ex["tests"]):
            problems.append(f"expected some test to be {value}")
        elif key == "expect-message" and value.lower() not in text:
            problems.append(f"no failing test mentions {value!r}")
        elif key == "expect-max-points" and ex["points"] > float(value) + 1e-9:
            problems.append(f"expected at most {value} points, got {ex['points']:g}")
        elif key == "expect-no-message" and value.lower() in text:
            problems.append(f"a failing test mentions {value!r} (a wrong hint)")
        elif key == "expect-note" and not any(value.lower() in n.lower() for n in ex.get("notes", [])):
            problems.append(f"no note mentions {value!r}")
    points = [e["points"] for e in graded]
    check = Check("mutants", number, mutant.name, False, ex["points"], ex["max_points"], caught, problems,
                  kind=mutant.kind, points_by_seed=points)
    if not check.seed_stable:
        problems.append("points differ across seeds: " + ", ".join(f"{p:.2f}" for p in points))
    if mutant.kind == "correct" and not all(abs(e["points"] - _runnable_points(e)) < EPS for e in graded):
        problems.append("a correct variant lost points on some seed")
    if mutant.kind != "correct" and not any("SURVIVED" in p for p in problems):
        check.hint_named = _names_the_bug(mutant, hint_text, text)
    check.ok = not problems
    return check


def _names_the_bug(mutant: Mutant, hint_text: str, text: str) -> bool:
    """Does the feedback name this mutant's bug?  `# expect-hint: key` lines
    declare the hints that must appear; without them, `# expect-message:`
    lines (text the message or hint must contain); a mutant that declares
    neither does not count as named."""
    expected = mutant.expected_hints()
    if expected:
        return all(h.lower() in hint_text for h in expected)
    messages = [value.lower() for key, value in mutant.header() if key == "expect-message"]
    return bool(messages) and all(m in text for m in messages)


def _mutant_verdict(mutant: Mutant, replies: list[tuple[int, dict]]) -> Check:
    """The Check of a mutant from its (seed, reply) pairs."""
    failed = [reply for _, reply in replies if not reply.get("ok")]
    if failed:
        reply = failed[0]
        return Check("mutants", mutant.exercise.number, mutant.name, False, kind=mutant.kind,
                     problems=[f"grading failed ({reply.get('kind')}): {reply.get('message', '')}"])
    return _mutant_check(mutant, [reply["report"] for _, reply in sorted(replies, key=lambda r: r[0])])


# ------------------------------------------------------------------ run
@dataclass
class VerifyResult:
    checks: list[Check]
    exercises: list[int]
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def mutation_scores(self) -> dict[int, tuple[int, int]]:
        """{exercise: (killed, mutants)} over wrong_* and hostile_*."""
        scores: dict[int, tuple[int, int]] = {}
        for number in self.exercises:
            mutants = [c for c in self.checks if c.group == "mutants" and c.exercise == number
                       and c.kind in ("wrong", "hostile")]
            killed = [c for c in mutants if c.points is not None and c.points < c.max_points - 1e-9]
            scores[number] = (len(killed), len(mutants))
        return scores

    def summary(self) -> dict[int, dict[str, tuple[int, int]]]:
        """Per exercise, (good, total) of: correct styles accepted, mutants killed,
        killed mutants whose hint names the bug, mutants graded alike on every seed."""
        out: dict[int, dict[str, tuple[int, int]]] = {}
        for number in self.exercises:
            mine = [c for c in self.checks if c.group == "mutants" and c.exercise == number]
            correct = [c for c in mine if c.kind == "correct"]
            wrong = [c for c in mine if c.kind in ("wrong", "hostile")]
            killed = [c for c in wrong if c.points is not None and c.points < c.max_points - EPS]
            multi = [c for c in mine if len(c.points_by_seed) > 1]
            out[number] = {
                "correct styles accepted": (sum(c.ok for c in correct), len(correct)),
                "mutants killed": (len(killed), len(wrong)),
                "hint names the bug": (sum(bool(c.hint_named) for c in killed), len(killed)),
                "seed stability": (sum(c.seed_stable for c in multi), len(multi)),
            }
        return out


def verify(solutions: Path, mutants_dir: Path | None, exercises: list[Exercise], *,
           jobs: int = 1, seed: int = PUBLIC_COURSE_SEED, timeout: float = 900.0,
           max_examples: int | None = None, progress=None, seeds: int = 1,
           train: bool = False) -> VerifyResult:
    from grader.authoring.generate import stub_texts
    from grader.batch.discover import hidden_tests_exist
    from grader.batch.legacy import run_jobs

    if not solutions.is_dir():
        raise GraderError(f"no solutions folder at {solutions}", hint="pass --solutions DIR")
    skipped = [f"exercise {e.number}: no hidden tests yet" for e in exercises if not hidden_tests_exist(e)]
    exercises = [e for e in exercises if hidden_tests_exist(e)]
    if not exercises:
        raise GraderError("no exercise with hidden tests to verify")
    numbers = [e.number for e in exercises]
    work = Path(tempfile.mkdtemp(prefix="attn-grade-verify-"))
    try:
        base = {"seed": seed, "train": train, "device": "cpu", "max_examples": max_examples}
        todo: list[dict] = [{"id": 0, "path": str(solutions.resolve()), "exercises": numbers,
                             "meta": ("solutions", None), **base}]
        stubs = work / "stubs"
        stubs.mkdir()
        for name, text in stub_texts(solutions).items():
            (stubs / name).write_text(text, encoding="utf-8")
        todo.append({"id": 1, "path": str(stubs), "exercises": numbers, "meta": ("stubs", None), **base})
        found = find_mutants(mutants_dir, exercises) if mutants_dir is not None else []
        for index, mutant in enumerate(found):
            path = mutant.build(solutions, work / "mutants" / f"{index:03d}")
            for offset in range(max(1, seeds)):
                todo.append({"id": len(todo), "path": str(path), "exercises": [mutant.exercise.number],
                             "meta": ("mutant", index), **base, "seed": seed + offset,
                             **mutant.options()})
        metas = {job["id"]: job["meta"] for job in todo}
        if progress:
            progress("start", total=len(todo))
        checks: list[Check] = []
        per_mutant: dict[int, list[tuple[int, dict]]] = {}
        expected_replies = {i: sum(1 for j in todo if j["meta"] == ("mutant", i)) for i in range(len(found))}
        for job, reply in run_jobs(todo, jobs, timeout, work / "logs"):
            group, index = metas[job["id"]]
            label = found[index].name if group == "mutant" else str(solutions if group == "solutions" else "stubs")
            if group == "mutant":
                replies = per_mutant.setdefault(index, [])
                replies.append((job["seed"], reply))
                if len(replies) == expected_replies[index]:
                    checks.append(_mutant_verdict(found[index], replies))
            elif not reply.get("ok"):
                problem = f"grading failed ({reply.get('kind')}): {reply.get('message', '')}"
                for number in job["exercises"]:
                    checks.append(Check(group, number, label, False, problems=[problem]))
            elif group == "solutions":
                checks += _result_checks_full("solutions", label, reply["report"], numbers)
            elif group == "stubs":
                checks += _result_checks_stub(label, reply["report"], numbers)
            if progress:
                progress("done_one", label=label)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    order = {"solutions": 0, "stubs": 1, "mutants": 2}
    checks.sort(key=lambda c: (order[c.group], c.exercise, c.name))
    return VerifyResult(checks, numbers, skipped)


# ------------------------------------------------------------------ output
def _points(check: Check) -> str:
    if check.points is None:
        return "-"
    return score_text(check.points, check.max_points)


def print_result(result: VerifyResult, console=None) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    if console is None:
        console = Console()
        if not console.is_terminal:          # CI logs: wide enough for the names
            console = Console(width=150)
    for note in result.skipped:
        console.print(f"note: {note}", style="dim")
    table = Table(title="attn-grade verify · solutions and stubs", box=box.ROUNDED, title_justify="left")
    for column in ("#", "checked", "points", "verdict"):
        table.add_column(column)
    for c in result.checks:
        if c.group == "mutants":
            continue
        verdict = Text("ok", style="green") if c.ok else Text("; ".join(c.problems), style="red")
        table.add_row(str(c.exercise), f"{c.group}", _points(c), verdict)
    console.print(table)
    mutants = [c for c in result.checks if c.group == "mutants"]
    if mutants:
        table = Table(title="mutants: which tests caught which mutant", box=box.ROUNDED,
                      title_justify="left")
        table.add_column("mutant", overflow="fold")
        table.add_column("points")
        table.add_column("caught by", overflow="fold")
        table.add_column("verdict", overflow="fold")
        for c in mutants:
            points = _points(c)
            caught = ", ".join(c.caught_by) if c.caught_by else ("-" if c.kind == "correct" else "nothing")
            verdict = Text("ok", style="green") if c.ok else Text("; ".join(c.problems), style="red")
            table.add_row(c.name, points, caught, verdict)
        console.print(table)
    console.print(summary_table(result))
    failed = [c for c in result.checks if not c.ok]
    if failed:
        console.print(Text(f"verify FAILED: {len(failed)} check(s)", style="bold red"))
    else:
        console.print(Text(f"verify passed: {len(result.checks)} checks", style="bold green"))


TARGETS = {"correct styles accepted": 1.0, "mutants killed": 1.0, "hint names the bug": 0.9,
           "seed stability": 1.0}


def summary_table(result: VerifyResult):
    """Per exercise: correct styles accepted, mutants killed, killed mutants whose hint
    names the bug, seed stability; each as a share, green when it meets its target."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title="per exercise (targets: " + ", ".join(
        f"{name} {100 * target:.0f}%" for name, target in TARGETS.items()) + ")",
        box=box.ROUNDED, title_justify="left")
    table.add_column("#")
    table.add_column("exercise")
    for name in TARGETS:
        table.add_column(name)
    for number, row in result.summary().items():
        cells = []
        for name, target in TARGETS.items():
            good, total = row[name]
            if not total:
                cells.append(Text("-", style="dim"))
                continue
            share = good / total
            cells.append(Text(f"{100 * share:.0f}% ({good}/{total})",
                              style="green" if share >= target - 1e-9 else "red"))
        table.add_row(str(number), registry.get(number).slug, *cells)
    return table


def default_mutants() -> Path:
    local = Path("tests/fixtures")
    return local if local.is_dir() else _PACKAGE_ROOT / "tests" / "fixtures"
