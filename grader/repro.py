"""`attn-grade repro EX TEST`: the script that rebuilds one failing property.

Grades exercise EX (with the given seed, so hypothesis finds the same
smallest failing input) and returns the repro of property TEST: a
self-contained Python script with the failing tensors and weights as
literals, which imports the student's own function or module from the
submission folder and asserts closeness to the expected values
(grader/counterexample.py writes it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from grader import registry
from grader.errors import ExitCode, GraderError
from grader.results import Status, TestResult


class NoRepro(GraderError):
    """The property did not fail, or its failure cannot be written as a script."""

    exit_code = ExitCode.SOME_FAILED


@dataclass
class Repro:
    exercise: int
    test: TestResult
    seed: int
    script: str


def find_test(tests: list[TestResult], name: str) -> TestResult:
    wanted = name.removeprefix("test_")
    for test in tests:
        if test.name == wanted:
            return test
    raise GraderError(f"exercise has no property {name!r}",
                      hint="one of: " + ", ".join(t.name for t in tests))


def repro(submission: str | os.PathLike, exercise, test_name: str, *, seed: int, device: str = "cpu",
          max_examples: int | None = None) -> Repro:
    """Grade `exercise` of `submission` with `seed`; the repro of `test_name`."""
    from grader import runner

    ex = registry.get(exercise)
    options = runner.GradingOptions(seed=seed, device=device, train=False, max_examples=max_examples)
    report = runner.grade(submission, [ex], options)
    test = find_test(report.exercises[0].tests, test_name)
    if test.status is Status.PASSED:
        raise NoRepro(f"{test.name} holds with seed {seed}: nothing to reproduce",
                      hint="the seed of a failing run is printed under its scorecard")
    if not test.repro:
        why = {Status.FAILED: "this property compares your code with itself (or with its own "
                              "gradients), so no expected values can be written down"}.get(
            test.status, f"it is {test.status.value}, not a wrong value: the scorecard's message "
                         "and traceback say where")
        raise NoRepro(f"no repro for {test.name}: {why}",
                      hint=f"attn-grade exercise {ex.number} --seed {seed} --details shows the failing case")
    return Repro(ex.number, test, seed, test.repro)
