"""Hostile submissions: each is scored as what it is, and the run completes.

Every case replaces exercise 1's file in a copy of solutions/ and is graded
with short timeouts.  Some cases also grade exercise 2 (the reference
solution) in the same run: whatever exercise 1's worker did, exercise 2
still gets full marks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from grader import registry, runner
from grader.results import Status
from grader.submission import Submission
from tests.conftest import FIXTURES, describe, grade, make_submission

CALL_TIMEOUT = 3.0
LOAD_TIMEOUT = 3.0

HEADER = "import math\nimport os\nimport sys\n\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"

SELF_ATTENTION = '''

class SelfAttention(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.W_q = nn.Linear(d_model, d_model, bias=False)
        self.W_k = nn.Linear(d_model, d_model, bias=False)
        self.W_v = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x):
        return scaled_dot_product_attention(self.W_q(x), self.W_k(x), self.W_v(x))[0]
'''


def _attention(body: str, *, scale: bool = True) -> str:
    """A scaled_dot_product_attention whose body starts with `body`."""
    divide = " / math.sqrt(q.size(-1))" if scale else ""
    return (f"\n\ndef scaled_dot_product_attention(q, k, v):\n{textwrap.indent(textwrap.dedent(body), '    ')}"
            f"    scores = q @ k.transpose(-2, -1){divide}\n"
            "    weights = torch.softmax(scores, dim=-1)\n"
            "    return weights @ v, weights\n")


def source(*, at_import: str = "", in_call: str = "", scale: bool = True) -> str:
    """A complete exercise-1 file: right (unless scale=False) apart from
    `at_import` (module level, after the definitions) and `in_call` (first
    lines of scaled_dot_product_attention)."""
    return HEADER + _attention(in_call, scale=scale) + SELF_ATTENTION + "\n" + textwrap.dedent(at_import)


@dataclass
class Case:
    text: str
    status: Status                      # exercise 1's status
    test_status: Status | None = None   # some test has this status (default: `status`)
    message: str = ""                   # in some failing test's message or hint
    points: float = 0.0                 # exercise 1's points, at most
    also_grade_2: bool = False          # grade exercise 2 (the solution) in the same run
    options: dict = field(default_factory=dict)
    scan: bool = True                   # False: the static scan is switched off, to reach the worker


MEGABYTE_PRINTS = """
print("x" * 2_000_000)
sys.stderr.write("y" * 2_000_000)
"""

# Code in the worker writing to the judge's reply pipe (found as the worker's
# write-only pipe other than stdout/stderr) before the worker's own answer.
REPLY_PIPE = """
import fcntl as _fcntl
import json as _json
import struct as _struct

def _to_judge(data):
    for _name in os.listdir("/proc/self/fd"):
        _fd = int(_name)
        try:
            _pipe = os.readlink(f"/proc/self/fd/{_fd}").startswith("pipe:")
            _mode = _fcntl.fcntl(_fd, _fcntl.F_GETFL) & os.O_ACCMODE
        except OSError:
            continue
        if _fd > 2 and _pipe and _mode == os.O_WRONLY:
            os.write(_fd, data)

def _header(message):
    raw = _json.dumps(message).encode()
    return _struct.pack("<I", len(raw)) + raw
"""



def to_judge(code: str) -> str:
    """`code` (indented freely) run at import, after the REPLY_PIPE helpers."""
    return REPLY_PIPE + textwrap.dedent(code)


FORGERY = """
import json as _json
_forged = {"schema": 1, "total": 80.0, "max_total": 80.0,
           "exercises": [{"number": 1, "points": 10.0, "max_points": 10.0, "status": "passed", "tests": []}]}
for _name in ("results.json", "report.json", "scorecard.json"):
    for _where in (os.getcwd(), os.path.dirname(os.getcwd())):
        try:
            with open(os.path.join(_where, _name), "w") as _f:
                _json.dump(_forged, _f)
        except OSError:
            pass
"""

CASES: dict[str, Case] = {
    # ---------------------------------------------------------------- hangs
    "infinite_loop_at_import": Case(
        source(at_import="while True:\n    pass\n"), Status.TIMEOUT, message="did not finish within",
        also_grade_2=True),
    "infinite_loop_in_call": Case(
        source(in_call="while True:\n    pass\n"), Status.TIMEOUT, message="did not finish within"),
    # ---------------------------------------------------------------- crashes
    "segfault_in_call": Case(
        # a real fault (the worker may be pid 1 of its namespace, which a
        # signal sent to itself does not stop); ctypes is past the static scan
        source(in_call="import ctypes\nctypes.string_at(0)\n"), Status.CRASHED,
        message="SIGSEGV", also_grade_2=True, scan=False),
    "sys_exit_at_import": Case(source(at_import="sys.exit(0)\n"), Status.CRASHED, message="sys.exit"),
    "sys_exit_in_call": Case(source(in_call="sys.exit(3)\n"), Status.CRASHED, message="sys.exit"),
    "os_exit_in_call": Case(
        source(in_call="os._exit(0)\n"), Status.CRASHED, message="exited the interpreter", also_grade_2=True),
    "allocates_30_gb_in_call": Case(
        source(in_call="torch.empty(30 * 2**30, dtype=torch.uint8).fill_(1)\n"), Status.CRASHED,
        message="memory", also_grade_2=True),
    "allocates_30_gb_at_import": Case(
        source(at_import="_big = torch.zeros(30 * 2**30, dtype=torch.uint8)\n"), Status.CRASHED,
        message="memory"),
    # ---------------------------------------------------------------- cheating
    "patches_allclose_and_assert_close": Case(
        source(scale=False, at_import="""
            torch.allclose = lambda *args, **kwargs: True
            torch.testing.assert_close = lambda *args, **kwargs: None
            torch.equal = lambda *args, **kwargs: True
            torch.Tensor.__eq__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)
            """),
        Status.FAILED, message="1/sqrt(d_k)", points=9.99),
    "calls_sdpa_directly": Case(
        HEADER + "\n\ndef scaled_dot_product_attention(q, k, v):\n"
        "    output = F.scaled_dot_product_attention(q, k, v)\n"
        "    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), dim=-1)\n"
        "    return output, weights\n" + SELF_ATTENTION,
        Status.FORBIDDEN, message="scaled_dot_product_attention"),
    "calls_sdpa_via_getattr_at_run_time": Case(
        HEADER + "\n\ndef scaled_dot_product_attention(q, k, v):\n"
        "    name = 'scaled_dot_' + 'product_attention'\n"
        "    output = getattr(F, name)(q, k, v)\n"
        "    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), dim=-1)\n"
        "    return output, weights\n" + SELF_ATTENTION,
        Status.FORBIDDEN, message="scaled_dot_product_attention"),
    "calls_sdpa_via_wrapped_at_run_time": Case(
        HEADER + "\n\ndef scaled_dot_product_attention(q, k, v):\n"
        "    fn = getattr(torch.nn.functional, ''.join(['scaled_dot', '_product_attention']))\n"
        "    fn = getattr(fn, '__wrapped__', fn)\n"
        "    output = fn(q, k, v)\n"
        "    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), dim=-1)\n"
        "    return output, weights\n" + SELF_ATTENTION,
        Status.FORBIDDEN, message="scaled_dot_product_attention"),
    "imports_sdpa_under_another_name": Case(
        "from torch.nn.functional import scaled_dot_product_attention as f\n" + HEADER +
        "\n\ndef scaled_dot_product_attention(q, k, v):\n"
        "    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), dim=-1)\n"
        "    return f(q, k, v), weights\n" + SELF_ATTENTION,
        Status.FORBIDDEN, message="scaled_dot_product_attention"),
    "forbidden_call_swallowed_by_except": Case(
        HEADER + "\n\ndef scaled_dot_product_attention(q, k, v):\n"
        "    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), dim=-1)\n"
        "    try:\n"
        "        return getattr(F, 'scaled_dot_product_' + 'attention')(q, k, v), weights\n"
        "    except BaseException:\n"
        "        return weights @ v, weights\n" + SELF_ATTENTION,
        Status.FORBIDDEN, message="scaled_dot_product_attention"),
    # ---------------------------------------------------------------- the reply pipe
    "stalls_in_the_middle_of_a_frame": Case(
        source(at_import=to_judge("""
            _to_judge(_struct.pack("<I", 64) + b'{"ok": true, "val')
            import time
            time.sleep(3600)
            """)), Status.TIMEOUT, message="did not finish within", also_grade_2=True),
    "sends_a_buffer_of_a_terabyte": Case(
        source(at_import=to_judge("""
            _to_judge(_header({"ok": True, "value": None, "buffers": 1}) + _struct.pack("<Q", 2**40))
            """)), Status.CRASHED, message="too large"),
    "sends_a_million_buffers": Case(
        source(at_import=to_judge("""
            _to_judge(_header({"ok": True, "value": None, "buffers": 10**6}) + _struct.pack("<Q", 0) * 8)
            """)), Status.CRASHED, message="too large"),
    "answers_before_the_worker": Case(
        source(scale=False, at_import=to_judge("""
            for _id in range(100):
                _to_judge(_header({"ok": True, "value": {"__dict__": []}, "id": _id, "buffers": 0}))
            """)), Status.CRASHED, message="does not match the request"),
    # ---------------------------------------------------------------- noise and state
    "prints_megabytes": Case(
        source(at_import=MEGABYTE_PRINTS, in_call='print("z" * 100_000)\n'), Status.PASSED, points=10.0),
    "forges_a_results_file": Case(
        source(scale=False, at_import=FORGERY, in_call=FORGERY), Status.FAILED, message="1/sqrt(d_k)",
        points=9.99),
    "changes_global_state_at_import": Case(
        source(at_import="""
            torch.set_default_dtype(torch.float64)
            torch.manual_seed(1234)
            torch.set_num_threads(1)
            torch.set_grad_enabled(False)
            """), Status.PASSED, points=10.0),
}


@pytest.fixture
def short_timeouts(monkeypatch):
    """Short call timeouts (GradingOptions) and import timeouts (set on each worker)."""
    make_client = runner.make_client

    def make_short_client(exercise, staging, options):
        client = make_client(exercise, staging, options)
        client.load_timeout = LOAD_TIMEOUT
        return client

    monkeypatch.setattr(runner, "make_client", make_short_client)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_hostile_submission_is_scored_as_what_it_is(name, tmp_path, short_timeouts, monkeypatch):
    case = CASES[name]
    if not case.scan:
        monkeypatch.setattr(Submission, "reflective_uses", lambda self, module: [])
    submission = make_submission(tmp_path / "submission", {"ex01_attention.py": case.text})
    before = _snapshot(submission)
    numbers = (1, 2) if case.also_grade_2 else (1,)
    report = grade(submission, *numbers, call_timeout=CALL_TIMEOUT, max_examples=5, **case.options)
    assert [r.number for r in report.exercises] == list(numbers)
    first = report.exercises[0]
    dump = describe(first)
    assert first.status is case.status, dump
    assert first.points <= case.points + 1e-9, dump
    if case.status is not Status.PASSED:
        expected = case.test_status or case.status
        assert any(t.status is expected for t in first.tests), dump
    if case.status is Status.FORBIDDEN:
        assert first.points == 0.0, dump
    if case.message:
        failing = [t for t in first.tests if t.status is not Status.PASSED]
        text = " ".join(f"{t.message} {t.hint}" for t in failing).lower()
        assert case.message.lower() in text, f"no failing test mentions {case.message!r}\n{dump}"
    if case.also_grade_2:
        second = report.exercises[1]
        assert second.status is Status.PASSED, describe(second)
        assert second.points == pytest.approx(second.max_points), describe(second)
    # Whatever the code did, the submission folder is as it was.
    assert _snapshot(submission) == before


def test_megabytes_of_output_are_capped(tmp_path):
    """A submission printing megabytes passes, and only a short tail of it is kept."""
    case = CASES["prints_megabytes"]
    submission = make_submission(tmp_path / "submission", {"ex01_attention.py": case.text})
    result = grade(submission, 1, max_examples=3).exercises[0]
    assert result.status is Status.PASSED, describe(result)
    assert 0 < len(result.output) <= 16 * 1024
    assert "output dropped" in result.output
    assert result.output.rstrip().endswith("z" * 1000)


def test_forged_results_file_is_never_read(tmp_path, monkeypatch):
    """A results file the submission writes changes nothing, and lands nowhere near the submission."""
    case = CASES["forges_a_results_file"]
    submission = make_submission(tmp_path / "submission", {"ex01_attention.py": case.text})
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    report = grade(submission, 1, max_examples=3)
    assert report.exercises[0].status is Status.FAILED
    assert report.total < report.max_total
    assert not any(p.name.endswith(".json") for p in submission.iterdir())
    assert not list(workdir.iterdir()), "the submission wrote into the grader's working directory"


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


# ------------------------------------------------------------------ the tripwires
TRIPWIRE_FIXTURES = {
    1: FIXTURES / "ex01" / "hostile_reaches_original_through_the_tripwire.py",
    8: FIXTURES / "ex08" / "hostile_cross_entropy_through_module_dict.py",
}


@pytest.mark.parametrize("number", list(TRIPWIRE_FIXTURES))
def test_reflective_routes_are_flagged_for_review(number):
    """The static scan: names built at run time, closure cells, bases... forbidden, for review."""
    exercise = registry.get(number)
    problem = runner.precheck(Submission.from_path(TRIPWIRE_FIXTURES[number]), exercise)
    assert problem is not None and problem.status is Status.FORBIDDEN
    assert "an instructor should review" in problem.message.lower(), problem.message
    assert "__closure__" in problem.message, problem.message


@pytest.mark.slow
@pytest.mark.parametrize("number", list(TRIPWIRE_FIXTURES))
def test_the_originals_behind_the_tripwires_are_out_of_reach(number, tmp_path, monkeypatch):
    """With the static scan out of the way, the worker's stand-ins lead to no
    original (closure cells, __wrapped__, bases, mro, module dict): the only
    thing found is the stand-in, which trips."""
    monkeypatch.setattr(Submission, "reflective_uses", lambda self, module: [])
    exercise = registry.get(number)
    submission = make_submission(tmp_path / "submission", {exercise.file: TRIPWIRE_FIXTURES[number]})
    result = grade(submission, number, max_examples=3).exercises[0]
    assert result.status is Status.FORBIDDEN, describe(result)
    assert result.points == 0.0, describe(result)


TRUSTED_REFERENCE = '''
import torch.nn as nn
import torch.nn.functional as F


def attention(q, k, v):
    return F.scaled_dot_product_attention(q, k, v)


class ReferenceMultiHeadAttention(nn.Module):
    def __init__(self, d_model, heads):
        super().__init__()
        self.inner = nn.MultiheadAttention(d_model, heads, batch_first=True)

    def forward(self, x):
        return self.inner(x, x, x, need_weights=False)[0]
'''

STUDENT = '''
import torch
import torch.nn as nn
import torch.nn.functional as F

import trusted_reference as reference
import ex04_multi_head

x = torch.randn(2, 3, 4)


def through_a_module_the_worker_trusted():
    return ex04_multi_head.ReferenceMultiHeadAttention(4, 2)(x)


def through_the_reference_function():
    return reference.attention(x, x, x)


def through_the_reference_module():
    return reference.ReferenceMultiHeadAttention(4, 2)(x)


def directly():
    return F.scaled_dot_product_attention(x, x, x)


def as_a_subclass():
    class Mine(nn.MultiheadAttention):
        pass
    return Mine(4, 2)


def through_a_torch_name_built_at_run_time():
    return getattr(nn, "Multihead" + "Attention")(4, 2)
'''

PROBE = '''
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from grader import registry
from grader.sandbox import guards
guards.TRUSTED_MODULES = ("trusted_reference",)
tripwires = guards.Tripwires()
tripwires.install(registry.get(1).forbidden)
import importlib.util
spec = importlib.util.spec_from_file_location("trusted_by_the_worker", sys.argv[1] + "/trusted_reference.py")
by_the_worker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(by_the_worker)
guards.trust_module(by_the_worker)
sys.modules["ex04_multi_head"] = by_the_worker
import student
outcomes = {}
for name in ("through_the_reference_function", "through_the_reference_module",
             "through_a_module_the_worker_trusted", "directly",
             "as_a_subclass", "through_a_torch_name_built_at_run_time"):
    tripwires.armed, tripwires.tripped = True, None
    try:
        getattr(student, name)()
        outcomes[name] = "ran"
    except guards.ForbiddenCall:
        outcomes[name] = "forbidden"
    finally:
        tripwires.armed = False
print(json.dumps(outcomes))
'''


def test_trusted_grader_code_may_call_forbidden_builtins_and_students_may_not(tmp_path):
    """guards.TRUSTED_MODULES: the grader's reference code calls the built-ins
    (through torch's own modules, too); the student's direct calls still trip."""
    trusted, student = tmp_path / "trusted", tmp_path / "student"
    trusted.mkdir()
    student.mkdir()
    (trusted / "trusted_reference.py").write_text(TRUSTED_REFERENCE)
    (student / "student.py").write_text(STUDENT)
    done = subprocess.run([sys.executable, "-c", PROBE, str(trusted), str(student)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "through_the_reference_function": "ran",
        "through_the_reference_module": "ran",
        "through_a_module_the_worker_trusted": "ran",
        "directly": "forbidden",
        "as_a_subclass": "forbidden",
        "through_a_torch_name_built_at_run_time": "forbidden",
    }
