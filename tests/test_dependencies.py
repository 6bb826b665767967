"""One bug, one penalty (issue 15): each exercise is graded on the grader's
reference of the earlier exercises it builds on (grader/reference/), and a
non-scoring line says how it fares on the student's own earlier files.

Each grading run is shared by the assertions about it (module-scoped), with
few hypothesis examples and no timed training check.
"""

from __future__ import annotations

import sys
import types

import pytest
import torch

from grader import dependencies, reference, registry, runner
from grader.sandbox import guards
from grader.results import ExerciseResult, Status, TestResult
from grader.submission import Submission
from tests.conftest import FIXTURES, SOLUTIONS, describe, grade, make_submission

EXAMPLES = 2


def _by_number(report) -> dict[int, ExerciseResult]:
    return {e.number: e for e in report.exercises}


# ------------------------------------------------------------ one bug, one penalty
@pytest.fixture(scope="module")
def masks_and_sines(tmp_path_factory):
    """Two bugs in two exercises that others build on: the mask applied
    after the softmax in exercise 2, sin and cos swapped in exercise 5."""
    return make_submission(tmp_path_factory.mktemp("ex02-ex05") / "submission", {
        "ex02_masks.py": FIXTURES / "ex02" / "wrong_mask_after_softmax.py",
        "ex05_positional_encoding.py": FIXTURES / "ex05" / "wrong_sin_cos_swapped.py"})


@pytest.fixture(scope="module")
def graded_in_isolation(masks_and_sines):
    return _by_number(grade(masks_and_sines, 2, 4, 5, 7, max_examples=EXAMPLES))


@pytest.mark.slow
@pytest.mark.parametrize("number, blamed", [(4, [2]), (7, [2, 5])])
def test_a_bug_costs_points_only_in_its_own_exercise(graded_in_isolation, number, blamed):
    for buggy in (2, 5):
        result = graded_in_isolation[buggy]
        assert result.points < result.max_points, describe(result)
    result = graded_in_isolation[number]
    assert result.status is Status.PASSED, describe(result)
    assert result.points == pytest.approx(result.max_points), describe(result)
    assert result.extra["own_stack"]["blame"] == blamed, result.extra["own_stack"]
    line = next(n for n in result.notes if n.startswith("Not scored — with your "))
    assert dependencies.fix_first(blamed) in line and "properties fail" in line, line


@pytest.mark.slow
def test_a_merge_bug_in_exercise_4_costs_points_only_in_exercise_4(tmp_path):
    submission = make_submission(tmp_path / "submission", {
        "ex04_multi_head.py": FIXTURES / "ex04" / "wrong_concat_without_transpose.py"})
    report = grade(submission, 4, 6, max_examples=EXAMPLES)
    assert report.dependencies == "reference" and report.to_dict()["dependencies"] == "reference"
    ex04, ex06 = report.exercises
    assert ex04.points < ex04.max_points, describe(ex04)
    assert ex06.status is Status.PASSED and ex06.points == pytest.approx(10.0), describe(ex06)
    assert any("fix exercise 4 first" in note for note in ex06.notes), ex06.notes


@pytest.mark.slow
def test_own_dependencies_reproduce_grading_end_to_end(masks_and_sines):
    """--dependencies own: exercise 4 on the student's buggy exercise 2 loses
    points, as before, and the note sends the student to exercise 2."""
    report = grade(masks_and_sines, 4, max_examples=EXAMPLES, dependencies="own")
    result = report.exercises[0]
    assert report.dependencies == "own"
    assert result.points < result.max_points, describe(result)
    assert any("fix exercise 2 first" in note for note in result.notes), result.notes


@pytest.mark.slow
def test_the_grader_reference_is_let_through_a_student_call_is_not(tmp_path):
    """Exercise 6 runs on the grader's MultiHeadAttention (which calls the
    forbidden built-ins), yet a built-in layer the student reaches by a name
    built at run time is still caught."""
    sneaky = (SOLUTIONS / "ex06_blocks.py").read_text(encoding="utf-8").replace(
        "class EncoderLayer(nn.Module):",
        "_BUILTIN = getattr(nn, 'Transformer' + 'EncoderLayer')\n\n\nclass EncoderLayer(nn.Module):"
    ).replace("        self.norm1 = nn.LayerNorm(d_model)\n        self.norm2 = nn.LayerNorm(d_model)\n"
              "        self.dropout1",
              "        self.norm1 = nn.LayerNorm(d_model)\n        self.norm2 = nn.LayerNorm(d_model)\n"
              "        self._spare = _BUILTIN(d_model, num_heads, d_ff)\n        self.dropout1", 1)
    assert "_BUILTIN(d_model" in sneaky
    submission = make_submission(tmp_path / "s", {"ex06_blocks.py": sneaky})
    result = grade(submission, 6, max_examples=2).exercises[0]
    assert result.status is Status.FORBIDDEN, describe(result)
    assert "TransformerEncoderLayer" in " ".join(t.message for t in result.tests), describe(result)


@pytest.mark.parametrize("line", ["from grader.reference.ex04_multi_head import MultiHeadAttention",
                                  "from grader import reference", "import grader.reference._attend"])
def test_a_submission_importing_the_grader_reference_is_forbidden(tmp_path, line):
    submission = Submission.from_path(make_submission(tmp_path / "s", {"ex04_multi_head.py": line}))
    abort = runner.precheck(submission, registry.get(4))
    assert abort is not None and abort.status is Status.FORBIDDEN, abort
    assert "grader.reference" in abort.message and "line 1" in abort.message
    notebook_cell = make_submission(tmp_path / "n", {"ex01_attention.py": (
        SOLUTIONS / "ex01_attention.py").read_text() + "\nfrom grader.notebook import check\n"})
    assert runner.precheck(Submission.from_path(notebook_cell), registry.get(1)) is None


# ------------------------------------------------------------ staging
def test_isolation_stages_only_what_an_exercise_builds_on(tmp_path):
    submission = Submission.from_path(SOLUTIONS)
    stagings = runner.Stagings(submission, tmp_path, "reference")
    folder = stagings.graded(registry.get(6))
    staged = {p.stem: p.read_text(encoding="utf-8") for p in folder.glob("*.py")}
    for module in ("ex01_attention", "ex02_masks", "ex04_multi_head"):
        assert "from grader.reference." + module in staged[module]
    assert staged["ex06_blocks"] == (SOLUTIONS / "ex06_blocks.py").read_text(encoding="utf-8")
    # a later exercise's reference would hand ex06 the very classes it must write
    assert "grader.reference" not in staged.get("ex07_transformer", "")
    own = runner.Stagings(submission, tmp_path / "o", "own").graded(registry.get(6))
    assert all("grader.reference" not in p.read_text(encoding="utf-8") for p in own.glob("*.py"))
    with pytest.raises(ValueError):
        runner.Stagings(submission, tmp_path, "theirs")


# ------------------------------------------------------------ the reference modules
def _solution(module):
    from tests.conftest import import_solution

    return import_solution(module)


def test_reference_modules_follow_the_contract_names_and_numbers():
    from grader.reference import ex04_multi_head, ex06_blocks, ex07_transformer

    torch.manual_seed(0)
    ours = ex07_transformer.Transformer(11, 13, 16, 2, 2, 32, 0.0, 40).double().eval()
    solution = _solution("ex07_transformer").Transformer(11, 13, 16, 2, 2, 32, 0.0, 40).double().eval()
    assert sorted(ours.state_dict()) == sorted(solution.state_dict())
    solution.load_state_dict(ours.state_dict())
    src, tgt = torch.randint(0, 11, (3, 7)), torch.randint(0, 13, (3, 5))
    src_pad = torch.zeros(3, 7, dtype=torch.bool)
    src_pad[0, 5:] = True
    with torch.no_grad():   # eval + no_grad: where PyTorch's fast path would differ
        assert torch.allclose(ours(src, tgt, src_pad), solution(src, tgt, src_pad), atol=1e-10)
    mha = ex04_multi_head.MultiHeadAttention(8, 2)
    assert [n for n, _ in mha.named_parameters()] == [f"W_{p}.{w}" for p in "qkvo"
                                                      for w in ("weight", "bias")]
    with pytest.raises(ValueError):
        ex04_multi_head.MultiHeadAttention(8, 3)
    x = torch.randn(2, 4, 8)
    causal = torch.ones(4, 4, dtype=torch.bool).triu(1)   # the contract: True = NOT allowed
    _, weights = mha(x, x, x, attn_mask=causal)
    assert weights.shape == (2, 2, 4, 4) and (weights[..., causal] == 0).all()
    with pytest.raises(ValueError, match="look at the arguments"):
        ex06_blocks.EncoderLayer(8, 2, 16)(x, src_key_padding_mask=torch.zeros(2, 5, dtype=torch.bool))


def test_reference_masked_attention_reads_true_as_not_allowed():
    from grader.reference import ex02_masks

    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 6)
    mask = ex02_masks.padding_mask(torch.tensor([5, 2]), 5)[:, None, :]
    out, weights = ex02_masks.masked_attention(q, k, v, mask)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3)) and (weights[1, :, 2:] == 0).all()
    assert torch.allclose(out, weights @ v, atol=1e-6)
    with pytest.raises(TypeError, match="bool"):
        ex02_masks.masked_attention(q, k, v, mask.float())


# ------------------------------------------------------------ the tripwires' allowance
def _called_by_trusted_code(depth: int = 0) -> bool:
    """guards' trust rule, applied (as a stand-in does) to the frame `depth` above the caller."""
    return guards._called_by_trusted_code(sys._getframe(depth + 1))


def test_only_the_reference_code_is_trusted(monkeypatch):
    """The tripwires' trust rule (guards._called_by_trusted_code), as a
    stand-in applies it: from a wrapper around the built-in (here a spy)."""
    from grader.reference import ex06_blocks

    guards._prepare_trust()   # as the worker does before any student code runs

    seen = []
    original = torch.nn.functional.multi_head_attention_forward

    def spy(*args, **kwargs):
        seen.append(_called_by_trusted_code(1))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "multi_head_attention_forward", spy)
    layer = ex06_blocks.EncoderLayer(8, 2, 16)
    x = torch.randn(2, 3, 8)
    layer(x)                                    # reference -> functional_call -> nn layers -> spy
    assert seen and all(seen)
    seen.clear()
    spy(x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1), 8, 2, torch.randn(24, 8), None,
        None, None, False, 0.0, torch.randn(8, 8), None)      # a student's own call
    assert seen == [False]

    hooked = []
    layer._builtin.self_attn.register_forward_pre_hook(
        lambda module, args: hooked.append(_called_by_trusted_code()))
    layer(x)                                    # a student callback run from inside the reference
    assert hooked == [False]

    def impostor():
        return _called_by_trusted_code()
    spoofed = types.FunctionType(impostor.__code__, {"__name__": "torch.nn.functional",
                                                     "_called_by_trusted_code": _called_by_trusted_code})
    assert spoofed() is False                   # a namespace that only claims to be torch's


def test_the_trusted_modules_are_the_package_s_own():
    assert set(reference.PROVIDED) <= set(reference.TRUSTED_MODULES)
    assert "ex03_cross_attention" not in reference.PROVIDED      # no later exercise imports it
    assert set(reference.provided_for(registry.get(1))) == set()
    assert set(reference.provided_for(registry.get(8))) == set(reference.PROVIDED)
    # a student's exercise 5 that imports exercise 2 gets the grader's; never a later one
    assert set(reference.provided_for(registry.get(5), {"ex02_masks", "ex07_transformer"})) == {
        "ex01_attention", "ex02_masks"}


# ------------------------------------------------------------ the one line
def _tests(*statuses):
    return [TestResult(name=f"p{i}", status=s, points=0.0, max_points=1.0)
            for i, s in enumerate(statuses)]


def test_the_line_names_an_earlier_exercise_only_when_it_fails_its_own_tests():
    ex = registry.get(6)
    graded = _tests(Status.PASSED, Status.PASSED, Status.PASSED)
    own = _tests(Status.FAILED, Status.PASSED, Status.ERROR)
    broken = dependencies.own_stack_line(ex, "reference", [2, 4], {2: Status.PASSED, 4: Status.FAILED},
                                         own, graded)
    assert broken.line == "Not scored — with your ex02, ex04: 2 of 3 properties fail — fix exercise 4 first."
    missing = dependencies.own_stack_line(ex, "reference", [4], {4: Status.NOT_IMPLEMENTED}, own, graded)
    assert "not implemented yet" in missing.line and "fix exercise" not in missing.line
    contract = dependencies.own_stack_line(ex, "reference", [4], {4: Status.PASSED}, own, graded)
    assert "although it passes its own tests" in contract.line and "fix exercise" not in contract.line
    same = dependencies.own_stack_line(ex, "reference", [4], {4: Status.FAILED}, graded, graded)
    assert same.line == "Not scored — with your ex04: passes too." and not same.blame
    # the failures are the exercise's own: the same ones fail on the grader's exercise 4
    own_only = dependencies.own_stack_line(ex, "reference", [4], {4: Status.FAILED}, own, own)
    assert "fix exercise" not in own_only.line


def test_the_training_check_names_the_broken_part_of_the_student_s_stack(tmp_path):
    check = TestResult(name=runner.TRAINING_CHECK, status=Status.FAILED, points=0.0, max_points=4.0,
                       message="ran out of time at accuracy 41.0%")
    result = ExerciseResult(8, "training", "AMP training loop", Status.FAILED, 6.0, 10.0, tests=[check])
    runs = runner.OwnStackRuns(Submission.from_path(SOLUTIONS), runner.GradingOptions(),
                               None, tmp_path)
    runs.statuses = {2: Status.PASSED, 4: Status.PASSED, 5: Status.FAILED, 6: Status.PASSED,
                     7: Status.PASSED}
    runs._training_check(result)
    assert check.message.endswith("and exercise 5 fails its own tests — fix exercise 5 first.")
    assert "your own ex02, ex04, ex05, ex06, ex07" in check.message and result.notes


@pytest.mark.parametrize("fmt", ["rich", "json", "markdown", "junit", "gradescope", "github"])
def test_the_line_shows_in_every_format_even_for_a_passing_exercise(fmt):
    from grader.render import render_text
    from grader.results import Report

    line = "Not scored — with your ex02: 3 of 7 properties fail — fix exercise 2 first."
    passed = ExerciseResult(4, "multi-head", "Multi-head attention", Status.PASSED, 10.0, 10.0,
                            tests=_tests(Status.PASSED), notes=[line])
    text = render_text(Report(submission="exercises", seed=1, exercises=[passed]), fmt)
    assert "fix exercise 2 first" in " ".join(text.split()), text


def test_no_way_back_to_an_original_through_a_reference_call():
    """torch hands the function it dispatches to a tensor subclass's
    __torch_function__ and to a function mode: the reference refuses both."""
    from torch.overrides import TorchFunctionMode

    from grader.reference import ex02_masks, ex04_multi_head

    class Leaky(torch.Tensor):
        pass

    q = torch.randn(2, 3, 4)
    with pytest.raises(TypeError, match="plain torch tensors"):
        ex02_masks.masked_attention(q.as_subclass(Leaky), q, q)

    class Stash(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    mha = ex04_multi_head.MultiHeadAttention(4, 2)
    with Stash(), pytest.raises(TypeError, match="plain torch tensors"):
        mha(q, q, q)
    with torch.device("cpu"):     # torch's own device context is fine
        assert mha(q, q, q)[0].shape == q.shape


def test_fixtures_can_ask_for_the_student_s_own_dependencies():
    from grader.verify import Mutant

    mutant = Mutant(registry.get(4), FIXTURES / "ex04" / "wrong_dependency_ex02")
    assert mutant.options() == {"dependencies": "own"}
