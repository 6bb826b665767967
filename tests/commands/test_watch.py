"""`attn-grade watch`'s screen: the quick scorecard is marked as such and
the full one replaces it (the loop itself: tests/test_watch.py)."""

from __future__ import annotations

import io
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from rich.console import Console

from grader import registry
from grader.commands.watch import _printer
from grader.watch import QUICK_EXAMPLES, WatchEvent
from tests.conftest import EXERCISES, SOLUTIONS
from tests.reports import fixed_report


def test_the_quick_scorecard_says_so_and_the_full_one_says_it_is_watching():
    out = io.StringIO()
    show = _printer(Console(file=out, width=100), seed=5)
    ex = registry.get(1)
    show(WatchEvent(ex, fixed_report(), changed=("ex01_attention.py",), quick=True))
    quick = out.getvalue()
    assert quick.startswith(f"quick check ({QUICK_EXAMPLES} examples per property)")
    assert "quick check of exercise 1 (ex01_attention.py changed) · seed 5 · full check running" in quick
    assert "watching exercise" not in quick
    out.seek(0), out.truncate()
    show(WatchEvent(ex, fixed_report(), changed=("ex01_attention.py",)))
    assert "quick check" not in out.getvalue()
    assert "watching exercise 1 (ex01_attention.py changed) · seed 5" in out.getvalue()


def _session_members(sid: int) -> list[int]:
    """Processes still in session `sid` (the command and all it started)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":      # fields: state ppid pgrp session
            found.append(int(stat.parent.name))
    return found


def test_ctrl_c_in_the_middle_of_a_regrade_exits_cleanly_and_leaves_no_process(tmp_path):
    """The real command: a save, then Ctrl-C while the full pass runs."""
    for py in EXERCISES.glob("*.py"):
        shutil.copy(py, tmp_path / py.name)
    shutil.copy(SOLUTIONS / "ex01_attention.py", tmp_path / "ex01_attention.py")
    proc = subprocess.Popen([sys.executable, "-m", "grader.cli", "watch", "1", "--submission",
                             str(tmp_path), "--seed", "2", "--max-examples", "100"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()

    def wait_for(marker: str) -> None:
        while marker not in lines.get(timeout=180):         # a guard against a hang, not a timing
            pass

    try:
        wait_for("watching exercise 1")                      # the first full scorecard
        with open(tmp_path / "ex01_attention.py", "a") as file:
            file.write("\n# saved again\n")
        wait_for("quick check of exercise 1")                # the quick pass of the save...
        time.sleep(0.5)                                      # ...into the full one (100 examples:
        proc.send_signal(signal.SIGINT)                      # seconds of hidden tests), and Ctrl-C
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert _session_members(proc.pid) == []
