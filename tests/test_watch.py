"""`attn-grade watch`: regrade on save (issue 12, point 6), driven by a test
that edits the file between polls (the clock is injected: no timing)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from grader import registry, runner
from grader.errors import GraderError
from grader.results import Status
from grader.sandbox import spawn
from grader.watch import changed_files, exercise_of, snapshot, watch
from tests.conftest import EXERCISES, SOLUTIONS


def _children() -> set[int]:
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        text = (task / "children").read_text().split()
        pids.update(int(p) for p in text)
    return pids


def test_a_save_regrades_the_exercise_whose_file_changed(tmp_path):
    shutil.copy(EXERCISES / "ex01_attention.py", tmp_path / "ex01_attention.py")
    shutil.copy(EXERCISES / "ex02_masks.py", tmp_path / "ex02_masks.py")
    options = runner.GradingOptions(seed=7, train=False, max_examples=1)
    events = []
    polls = []

    def sleep(_seconds):                       # the injected clock: one call per poll
        polls.append(1)
        if len(polls) == 2:                    # the student saves a finished exercise 1
            shutil.copy(SOLUTIONS / "ex01_attention.py", tmp_path / "ex01_attention.py")
            os.utime(tmp_path / "ex01_attention.py", ns=(1, 10**18))
        if len(polls) == 6:
            raise KeyboardInterrupt            # Ctrl-C

    before = _children()
    passes = []

    def grade(folder, ex, quick):
        passes.append(quick)
        return runner.grade(folder, [ex], options)

    graded = watch(tmp_path, None, grade, events.append, sleep=sleep)
    assert graded == 1 and passes == [True, False]          # the quick pass, then the full one
    assert [e.quick for e in events] == [True, False]
    for event in events:
        assert event.exercise.number == 1 and event.changed == ("ex01_attention.py",)
        assert event.report.exercises[0].status is Status.PASSED
    spawn.shutdown()                           # what `attn-grade watch` does on Ctrl-C
    assert _children() <= before               # no zygote, no worker left behind


def test_a_given_exercise_is_graded_at_once_and_on_every_save(tmp_path):
    shutil.copy(EXERCISES / "ex02_masks.py", tmp_path / "ex02_masks.py")
    graded: list[int] = []
    edits = iter([lambda: (tmp_path / "ex02_masks.py").write_text("x = 1\n"), None, None,
                  lambda: (tmp_path / "ex02_masks.py").write_text("x = 22\n"), None, None])

    def sleep(_seconds):
        step = next(edits, None)
        if step:
            step()

    def fake_grade(folder, ex, quick):
        graded.append(ex.number)
        return None

    assert watch(tmp_path, registry.get(2), fake_grade, lambda e: None, sleep=sleep, iterations=8,
                 quick=False) == 3
    assert graded == [2, 2, 2]


def test_a_save_during_the_quick_pass_skips_the_full_pass_of_the_older_version(tmp_path):
    target = tmp_path / "ex01_attention.py"
    target.write_text("x = 1\n")
    shown = []

    def fake_grade(folder, ex, quick):
        graded_text = target.read_text()
        if quick and len(shown) == 0:          # the student saves while the first quick pass runs
            target.write_text("x = 22\n")
        return (graded_text, quick)

    def show(event):
        shown.append(event.report)

    watch(tmp_path, registry.get(1), fake_grade, show, sleep=lambda s: None, iterations=3)
    # the first version only ever got its quick pass; the second got both
    assert shown == [("x = 1\n", True), ("x = 22\n", True), ("x = 22\n", False)]


def test_a_grading_error_is_said_once(tmp_path):
    (tmp_path / "ex01_attention.py").write_text("x = 1\n")
    events = []

    def failing_grade(folder, ex, quick):
        raise GraderError("no exercise files in here")

    watch(tmp_path, registry.get(1), failing_grade, events.append, sleep=lambda s: None, iterations=2)
    assert [(e.error, e.quick) for e in events] == [("no exercise files in here", False)]


def test_snapshots_and_which_exercise_changed(tmp_path):
    (tmp_path / "ex03_cross_attention.py").write_text("a")
    (tmp_path / "notes.py").write_text("b")
    first = snapshot(tmp_path)
    assert list(first) == ["ex03_cross_attention.py"]
    (tmp_path / "ex03_cross_attention.py").write_text("abc")
    assert changed_files(first, snapshot(tmp_path)) == ["ex03_cross_attention.py"]
    assert exercise_of(["ex05_positional_encoding.py", "ex03_cross_attention.py"]).number == 3
    assert exercise_of(["notes.py"]) is None



def test_a_ctrl_c_that_python_swallowed_still_stops_the_loop(tmp_path):
    """A KeyboardInterrupt raised inside a weakref callback or __del__ is only
    printed: the loop also stops on the flag Ctrl-C sets (CtrlC.pressed)."""
    (tmp_path / "ex01_attention.py").write_text("x = 1\n")
    passes = []
    pressed = []

    def grade(folder, ex, quick):
        passes.append(quick)
        pressed.append(True)                   # Ctrl-C during the quick pass, swallowed
        return None

    graded = watch(tmp_path, registry.get(1), grade, lambda e: None, sleep=lambda s: None,
                   stopped=lambda: bool(pressed))
    assert graded == 1 and passes == [True]    # no full pass, no polling afterwards


def test_ctrl_c_sets_the_flag_and_raises():
    import signal

    import pytest

    from grader.watch import CtrlC

    before = signal.getsignal(signal.SIGINT)
    with CtrlC() as ctrl_c:
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        assert ctrl_c.pressed
    assert signal.getsignal(signal.SIGINT) is before
