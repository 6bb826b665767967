"""`attn-grade verify`: solutions full marks, stubs zero, mutants caught."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from grader import registry, verify
from grader.cli import main
from tests.conftest import FIXTURES, SOLUTIONS


def _mutants(tmp_path):
    folder = tmp_path / "mutants" / "ex01"
    folder.mkdir(parents=True)
    fast = "# max-examples: 5\n"
    wrong = (FIXTURES / "ex01" / "wrong_no_scale.py").read_text()
    (folder / "correct_einsum.py").write_text(fast + (FIXTURES / "ex01" / "correct_einsum.py").read_text())
    (folder / "wrong_no_scale.py").write_text(fast + wrong)
    (folder / "wrong_survivor.py").write_text(fast + (SOLUTIONS / "ex01_attention.py").read_text())
    (folder / "correct_not_really.py").write_text(fast + wrong)
    (folder / "wrong_expects_a_timeout.py").write_text(fast + "# expect-status: timeout\n" + wrong)
    (folder / "notes.md").write_text("not a mutant")
    (tmp_path / "mutants" / "ex02").mkdir()      # an exercise not asked for: ignored
    shutil.copy(FIXTURES / "ex01" / "wrong_no_scale.py", tmp_path / "mutants" / "ex02" / "wrong_x.py")
    return tmp_path / "mutants"


@pytest.mark.slow
def test_verify_reports_survivors_false_alarms_and_unmet_expectations(tmp_path, monkeypatch):
    mutants = _mutants(tmp_path)
    seen = {}
    real = verify.verify

    def spy(*args, **kwargs):
        seen["result"] = real(*args, **kwargs)
        return seen["result"]

    monkeypatch.setattr(verify, "verify", spy)
    out = CliRunner().invoke(main, ["verify", "--solutions", str(SOLUTIONS), "--mutants", str(mutants),
                                    "-e", "1", "--jobs", "2", "--max-examples", "5"])
    assert out.exit_code == 1, out.output
    result = seen["result"]
    by_name = {c.name: c for c in result.checks}
    assert [c.ok for c in result.checks if c.group in ("solutions", "stubs")] == [True, True]
    assert by_name["ex01/correct_einsum.py"].ok
    killed = by_name["ex01/wrong_no_scale.py"]
    assert killed.ok and killed.caught_by and any("failed" in c for c in killed.caught_by)
    assert "SURVIVED" in by_name["ex01/wrong_survivor.py"].problems[0]
    assert "correct variant lost points" in by_name["ex01/correct_not_really.py"].problems[0]
    assert by_name["ex01/wrong_expects_a_timeout.py"].problems == ["expected status timeout, got failed"]
    assert not any(c.name.startswith("ex02/") for c in result.checks)
    assert result.mutation_scores() == {1: (2, 3)}
    text = out.output
    assert "per exercise" in text and "which tests caught which mutant" in text
    assert "SURVIVED" in text and "verify FAILED" in text and "67% (2/3)" in text
    summary = result.summary()[1]
    assert summary["mutants killed"] == (2, 3)
    assert summary["correct styles accepted"] == (1, 2)
    assert summary["seed stability"] == (0, 0)            # one seed: nothing to compare


def _report(number, tests):
    points = sum(t[2] for t in tests)
    status = "passed" if all(t[1] == "passed" for t in tests) else next(
        t[1] for t in tests if t[1] != "passed")
    return {"exercises": [{"number": number, "status": status, "points": points, "max_points": 10.0,
                           "tests": [{"name": n, "status": s, "message": m, "hint": ""}
                                     for n, s, _, m in tests]}]}


def test_a_stub_that_scores_or_errors_fails_the_check():
    good = _report(1, [("a", "not_implemented", 0.0, ""), ("b", "not_implemented", 0.0, "")])
    assert verify._result_checks_stub("stubs", good, [1])[0].ok
    scoring = _report(1, [("a", "not_implemented", 0.0, ""), ("b", "passed", 5.0, "")])
    check = verify._result_checks_stub("stubs", scoring, [1])[0]
    assert not check.ok and "scores 5 points" in check.problems[0] and "b: passed" in check.problems[1]
    erroring = _report(1, [("a", "error", 0.0, "TypeError")])
    assert not verify._result_checks_stub("stubs", erroring, [1])[0].ok


def test_mutants_are_found_by_kind(tmp_path):
    mutants = _mutants(tmp_path)
    (mutants / "ex01" / "hostile_folder").mkdir()
    (mutants / "ex01" / "hostile_folder" / "ex01_attention.py").write_text("import os\nos._exit(1)\n")
    found = verify.find_mutants(mutants, [registry.get(1)])
    assert [m.path.name for m in found] == [
        "correct_einsum.py", "correct_not_really.py", "hostile_folder", "wrong_expects_a_timeout.py",
        "wrong_no_scale.py", "wrong_survivor.py"]
    assert {m.kind for m in found} == {"correct", "wrong", "hostile"}
    built = found[2].build(SOLUTIONS, tmp_path / "built")
    assert (built / "ex01_attention.py").read_text().startswith("import os")
    assert (built / "ex02_masks.py").exists()
    assert found[3].options() == {"max_examples": 5}


@pytest.mark.slow
def test_verify_passes_on_the_untouched_repository_for_every_exercise():
    """Solutions full marks, stubs not implemented, on all exercises; the training check is
    not run (--no-train), and what was not run is held against nobody."""
    out = CliRunner().invoke(main, ["verify", "--solutions", str(SOLUTIONS), "--no-mutants", "--no-train",
                                    "--jobs", "2", "--max-examples", "2"])
    assert out.exit_code == 0, out.output
    assert "verify passed" in out.output


def _mutant(tmp_path, name, header=""):
    folder = tmp_path / "ex01"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(header + "x = 1\n")
    return verify.find_mutants(tmp_path, [registry.get(1)])[0]


def test_a_mutant_graded_differently_across_seeds_fails_the_check(tmp_path):
    mutant = _mutant(tmp_path, "wrong_unstable.py")
    tests = [("a", "failed", 0.0, "m"), ("b", "passed", 5.0, "")]
    other = [("a", "passed", 5.0, ""), ("b", "failed", 0.0, "m")]
    lucky = [("a", "passed", 5.0, ""), ("b", "passed", 5.0, "")]
    stable = verify._mutant_check(mutant, [_report(1, tests), _report(1, other)])
    assert stable.ok and stable.seed_stable and stable.points_by_seed == [5.0, 5.0]
    unstable = verify._mutant_check(mutant, [_report(1, tests), _report(1, lucky)])
    assert not unstable.ok and not unstable.seed_stable
    assert any("differ across seeds" in p for p in unstable.problems)


def test_the_declared_hint_key_decides_whether_the_hint_names_the_bug(tmp_path):
    from grader import hints

    named = _mutant(tmp_path, "wrong_named.py", "# expect-hint: no_scale\n")
    report = _report(1, [("a", "failed", 0.0, "m"), ("b", "passed", 5.0, "")])
    report["exercises"][0]["tests"][0]["hint"] = hints.hint("no_scale")
    assert verify._mutant_check(named, [report]).hint_named is True
    report["exercises"][0]["tests"][0]["hint"] = hints.hint("scale_by_dk")
    assert verify._mutant_check(named, [report]).hint_named is False
    undeclared = _mutant(tmp_path / "other", "wrong_plain.py")
    assert verify._mutant_check(undeclared, [report]).hint_named is False
