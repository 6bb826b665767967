"""The actual failing case and a repro (issue 12, points 1 and 2).

Unit part: the call log and `capture`, on calls recorded by hand (golden
counterexample JSON and repro).  Integration part: ONE grading run of a
wrong exercise 1 and a wrong exercise 4 (few examples); each repro it
writes is run in the wrong submission (AssertionError) and in solutions/
(passes), each set in one Python process.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from grader import counterexample
from grader.counterexample import LOG, capture, decode, encode
from grader.results import Status
from tests.conftest import FIXTURES, GOLDEN, SOLUTIONS, grade, make_submission

UPDATE = os.environ.get("ATTN_UPDATE_GOLDEN") == "1"

WRONG_EX01 = textwrap.dedent('''
    import torch
    import torch.nn as nn


    def scaled_dot_product_attention(q, k, v):
        weights = torch.softmax(q @ k.transpose(-2, -1), dim=-1)    # the 1/sqrt(d_k) is missing
        return weights @ v, weights


    class SelfAttention(nn.Module):
        def __init__(self, d_model):
            super().__init__()
            self.W_q = nn.Linear(d_model, d_model, bias=False)
            self.W_k = nn.Linear(d_model, d_model, bias=False)
            self.W_v = nn.Linear(d_model, d_model, bias=False)

        def forward(self, x):
            return scaled_dot_product_attention(self.W_q(x), self.W_k(x), self.W_v(x))[0]
''')


# ---------------------------------------------------------------------- unit
def _tensors(seed: int, *shapes):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64).to(torch.float32) for s in shapes]


def _wrong_call():
    LOG.clear()
    q, k, v = _tensors(0, (2, 2), (3, 2), (3, 1))
    weights = torch.softmax(q @ k.T, -1)
    result = (weights @ v, weights)
    LOG.record_call({"module": "ex01_attention", "path": "scaled_dot_product_attention"}, "", None,
                    (q, k, v), {}, result)
    expected = torch.softmax(q.double() @ k.double().T / math.sqrt(2), -1)
    return result, expected


def test_capture_names_the_inputs_and_keeps_got_and_expected():
    (_, weights), expected = _wrong_call()
    example, repro = capture(weights, expected, "weights", atol=2e-5, rtol=1e-4)
    assert list(example["inputs"]) == ["q", "k", "v"]
    assert example["got"]["weights"]["shape"] == [2, 3] and example["got"]["weights"]["dtype"] == "float32"
    assert example["expected"]["weights"]["dtype"] == "float64"
    assert torch.equal(decode(example["got"]["weights"]), weights)
    assert example["call"] == "scaled_dot_product_attention(q, k, v)[1]"
    assert "from ex01_attention import scaled_dot_product_attention" in repro
    assert "import grader" not in repro and "from grader" not in repro
    golden = {"counterexample": example, "repro": repro}
    path = GOLDEN / "counterexample.json"
    if UPDATE:
        path.write_text(json.dumps(golden, indent=2) + "\n", encoding="utf-8")
    # compared to 6 significant digits: softmax may differ in the last bits between CPUs
    assert _rounded(json.loads(path.read_text(encoding="utf-8"))) == _rounded(json.loads(json.dumps(golden)))


def _rounded(value):
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, str):
        return re.sub(r"-?\d+\.\d+(?:e-?\d+)?", lambda m: f"{float(m.group(0)):.6g}", value)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def test_the_repro_rebuilds_the_inputs_exactly():
    (_, weights), expected = _wrong_call()
    _, repro = capture(weights, expected, "weights", atol=2e-5, rtol=1e-4)
    namespace: dict = {}
    code = repro.split("\nresult = ")[0]                  # the literals, without calling anything
    exec(compile(code.replace("from ex01_attention import scaled_dot_product_attention", ""),
                 "<repro>", "exec"), namespace)
    q, k, v = LOG.calls[-1].args
    assert all(torch.equal(namespace[n], t) for n, t in zip("qkv", (q, k, v)))
    assert torch.equal(namespace["expected"], expected)


def test_a_property_comparing_the_code_with_itself_has_no_repro():
    LOG.clear()
    (x,) = _tensors(1, (3, 2))
    out = x * 2
    LOG.record_call({"module": "ex01_attention", "path": "scaled_dot_product_attention"}, "", None,
                    (x, x, x), {}, (out, out))
    permuted = out[[2, 0, 1]]
    out_perm = x[[2, 0, 1]] * 3                            # a second call, whose result is wrong
    LOG.record_call({"module": "ex01_attention", "path": "scaled_dot_product_attention"}, "", None,
                    (x, x, x), {}, (out_perm, out_perm))
    example, repro = capture(out_perm, permuted, "output", atol=1e-5, rtol=1e-5)
    assert example is not None and example["inputs"] and repro == ""


def test_values_round_trip_with_special_floats():
    t = torch.tensor([[float("nan"), float("inf")], [-float("inf"), 0.5]])
    again = decode(json.loads(json.dumps(encode(t))))
    assert torch.equal(torch.isnan(again), torch.isnan(t)) and again[0, 1] == math.inf and again[1, 1] == 0.5
    mask = torch.tensor([[True, False]])
    assert torch.equal(decode(encode(mask)), mask)


def test_nothing_is_captured_while_hypothesis_shrinks(monkeypatch):
    (_, weights), expected = _wrong_call()
    monkeypatch.setattr(counterexample, "_final_example", lambda: False)
    assert capture(weights, expected, "weights") == (None, "")


# ---------------------------------------------------------------------- integration
@pytest.fixture(scope="module")
def wrong_run(tmp_path_factory):
    folder = make_submission(tmp_path_factory.mktemp("wrong"), {
        "ex01_attention.py": WRONG_EX01,
        "ex04_multi_head.py": FIXTURES / "ex04" / "wrong_scale_d_model.py",
    })
    report = grade(folder, 1, 4, seed=11, max_examples=5)
    return folder, report


def _run_repros(folder: Path, scripts: dict[str, str]) -> dict[str, str]:
    """Run each script in `folder` (one process): {name: "passed" | "AssertionError" | other}."""
    driver = textwrap.dedent('''
        import json, sys
        scripts = json.loads(sys.stdin.read())
        outcome = {}
        for name, code in scripts.items():
            try:
                exec(compile(code, name, "exec"), {"__name__": "__main__"})
                outcome[name] = "passed"
            except AssertionError:
                outcome[name] = "AssertionError"
            except BaseException as exc:
                outcome[name] = type(exc).__name__ + ": " + str(exc)[:200]
        print(json.dumps(outcome))
    ''')
    done = subprocess.run([sys.executable, "-c", driver], cwd=folder, input=json.dumps(scripts),
                          capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_failed_values_carry_the_counterexample_in_the_json(wrong_run):
    _, report = wrong_run
    data = json.loads(json.dumps(report.to_dict()))
    ex1 = {t["name"]: t for t in data["exercises"][0]["tests"]}
    case = ex1["matches_the_equation"]["counterexample"]
    assert set(case) >= {"inputs", "got", "expected"} and set(case["inputs"]) == {"q", "k", "v"}
    for value in [*case["inputs"].values(), *case["got"].values(), *case["expected"].values()]:
        assert set(value) == {"shape", "dtype", "values"}
    module_case = ex1["self_attention_matches_the_equation"]["counterexample"]
    assert {"W_q.weight", "W_k.weight", "W_v.weight", "x"} <= set(module_case["inputs"])
    ex4 = [t for t in data["exercises"][1]["tests"] if t["status"] == "failed" and t["repro"]]
    assert ex4, "exercise 4's wrong scale gave no repro"
    assert any({"W_q.weight", "W_o.weight", "query"} <= set(t["counterexample"]["inputs"]) for t in ex4)
    for t in data["exercises"][0]["tests"] + data["exercises"][1]["tests"]:
        if t["status"] == "passed":
            assert t["counterexample"] is None and t["repro"] == ""


def test_each_repro_fails_on_the_wrong_submission_and_passes_on_solutions(wrong_run, tmp_path):
    folder, report = wrong_run
    scripts = {f"{ex.number}:{t.name}": t.repro for ex in report.exercises for t in ex.tests if t.repro}
    assert {"1:matches_the_equation", "1:self_attention_matches_the_equation"} <= set(scripts)
    assert any(name.startswith("4:") for name in scripts)
    assert set(_run_repros(folder, scripts).values()) == {"AssertionError"}
    clean = tmp_path / "solutions"
    shutil.copytree(SOLUTIONS, clean, ignore=shutil.ignore_patterns("__pycache__"))
    assert set(_run_repros(clean, scripts).values()) == {"passed"}


def test_the_scorecard_shows_the_failing_tensors(wrong_run):
    from grader.render import render_text

    _, report = wrong_run
    text = render_text(report, "rich")
    assert "the failing case: scaled_dot_product_attention(q, k, v)" in text
    assert "attn-grade repro 1 matches_the_equation --seed 11" in text
    md = render_text(report, "markdown")
    assert "| got 0 |" in md and "**the failing case:**" in md


def test_repro_command_prints_the_script(wrong_run, monkeypatch):
    from grader import repro as repro_module
    from grader.commands.repro import repro_command

    folder, report = wrong_run
    test = next(t for t in report.exercises[0].tests if t.name == "matches_the_equation")

    def same_run(submission, exercise, name, *, seed, **_):   # the grading above, not a second one
        assert (Path(submission), str(exercise), seed) == (folder, "1", 11)
        return repro_module.Repro(1, repro_module.find_test(report.exercises[0].tests, name), seed,
                                  repro_module.find_test(report.exercises[0].tests, name).repro)

    monkeypatch.setattr(repro_module, "repro", same_run)
    out = CliRunner().invoke(repro_command, ["1", "matches_the_equation", "--seed", "11",
                                             "--submission", str(folder)])
    assert out.exit_code == 0, out.output
    assert out.stdout == test.repro


def test_repro_says_why_when_there_is_nothing_to_reproduce(wrong_run):
    from grader.errors import ExitCode, GraderError
    from grader.repro import NoRepro, find_test

    _, report = wrong_run
    tests = report.exercises[0].tests
    with pytest.raises(GraderError, match="no property 'no_such_property'") as info:
        find_test(tests, "no_such_property")
    assert info.value.hint.startswith("one of: matches_the_equation")
    assert find_test(tests, "test_matches_the_equation").name == "matches_the_equation"
    assert NoRepro("x").exit_code == ExitCode.SOME_FAILED
    assert any(t.status is Status.PASSED for t in tests)


def _signature_names(module, name: str) -> list[str]:
    import inspect

    cls_or_fn, _, method = name.partition(".")
    target = getattr(module, cls_or_fn)
    if inspect.isclass(target):
        target = getattr(target, method or "forward")
    return [p for p in inspect.signature(target).parameters if p != "self"]


def test_the_inputs_are_named_as_the_contract_names_them():
    """CALL_PARAMETERS / INIT_PARAMETERS against the reference solutions'
    signatures (which follow /work/shared/exercise-contract.md), and every
    contract function and module that takes tensors has its names."""
    import inspect

    from grader import registry
    from tests.conftest import import_solution

    solutions = {ex.module: import_solution(ex.module) for ex in registry.EXERCISES}
    for ex in registry.EXERCISES:
        for name in ex.api:
            if name in ("save_checkpoint", "load_checkpoint", "train"):   # keyword-only, files
                continue
            assert name in counterexample.CALL_PARAMETERS, name
            if inspect.isclass(getattr(solutions[ex.module], name)):
                assert name in counterexample.INIT_PARAMETERS, name
    for table, init in ((counterexample.CALL_PARAMETERS, False), (counterexample.INIT_PARAMETERS, True)):
        for name, names in table.items():
            module = next(m for m in solutions.values() if hasattr(m, name.partition(".")[0]))
            actual = _signature_names(module, name + (".__init__" if init else ""))
            assert actual[:len(names)] == list(names), (name, actual)


def test_init_and_call_arguments_never_share_a_name():
    built = counterexample.Built("ex06_blocks", "Mystery", (8, 2), {})
    call = counterexample.Call("ex06_blocks", "Mystery", "", (torch.ones(1), torch.zeros(1)), {}, torch.ones(1),
                               built)
    inputs = counterexample._inputs(call)
    assert set(inputs) == {"init_arg0", "init_arg1", "arg0", "arg1"}
