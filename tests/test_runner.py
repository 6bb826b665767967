"""The runner in a long-lived process (batch judges, this test suite):
each grading run gets its own hypothesis settings."""

from __future__ import annotations

import importlib
from pathlib import Path

import grader.sandbox.client as client_module
from grader.results import Status
from tests.conftest import SOLUTIONS, grade_one


def count_round_trips(monkeypatch) -> list[int]:
    count = [0]
    original = client_module.WorkerClient._round_trip

    def counting(self, *args, **kwargs):
        count[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(client_module.WorkerClient, "_round_trip", counting)
    return count


def test_a_hidden_module_imported_early_still_grades_with_the_grading_settings():
    """`@given` freezes settings.default when a module is imported; importing a
    hidden test module before any grading (as harness tests do) must not turn
    hypothesis's health checks back on for correct submissions."""
    importlib.import_module("grader.hidden.test_ex03_cross_attention")
    result = grade_one(SOLUTIONS, 3, max_examples=3)
    assert result.status is Status.PASSED, [(t.name, t.message[:200]) for t in result.tests]


def test_max_examples_applies_to_every_run_of_one_process(monkeypatch):
    count = count_round_trips(monkeypatch)
    runs = {}
    for examples in (2, 6, 2):
        count[0] = 0
        result = grade_one(SOLUTIONS, 1, max_examples=examples)
        assert result.status is Status.PASSED
        runs.setdefault(examples, []).append(count[0])
    assert runs[2][0] == runs[2][1]            # the same settings give the same work
    assert runs[6][0] > 2 * runs[2][0]         # and a larger budget really is used


def test_shutdown_leaves_no_temporary_folders():
    from grader.sandbox import spawn

    spawn.prewarm(warm=False)
    folder = spawn._empty_cwd()
    assert Path(folder).is_dir()
    spawn.shutdown()
    assert not Path(folder).exists()


def test_grade_leaves_its_callers_process_as_it_was(tmp_path, monkeypatch):
    """Notebook check() and these tests call grade() in-process: no chdir,
    no change to torch's thread count, nothing written where it runs."""
    import os

    import torch

    from grader import registry, runner
    from tests.conftest import SOLUTIONS

    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    seen: list[tuple[str, int]] = []

    def progress(event, **info):
        seen.append((os.getcwd(), torch.get_num_threads()))

    runner.grade(SOLUTIONS, [registry.get(1)], runner.GradingOptions(seed=3, max_examples=2),
                 progress=progress)
    assert seen and set(seen) == {(str(tmp_path), threads)}
    assert os.getcwd() == str(tmp_path) and torch.get_num_threads() == threads
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_during_the_hidden_tests_stops_grading():
    """pytest turns a KeyboardInterrupt into an exit status; grade() raises it
    again, so `watch` stops instead of showing a half-graded scorecard."""
    import pytest

    from grader import registry, runner

    calls = []

    def progress(event, **info):
        calls.append(event)
        if event == "test":
            raise KeyboardInterrupt              # Ctrl-C after the first test

    with pytest.raises(KeyboardInterrupt):
        runner.grade(SOLUTIONS, [registry.get(1)], runner.GradingOptions(seed=3, max_examples=2),
                     progress=progress)
    assert calls.count("test") == 1
