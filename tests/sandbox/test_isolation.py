"""Isolation at the operating-system level (grader/sandbox/isolation.py).

One hostile exercise-1 submission (tests/fixtures/hostile/os_escape.py)
tries every OS attack class at import and prints what it reached; it is
graded once per sandbox level this machine offers (`strict`, and `uid`
forced through ATTN_GRADE_SANDBOX when running as root), and each test
below checks one class against that run.  CI runs as root on Linux, so
both levels are exercised there; elsewhere the tests skip with the reason.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import grader
from grader.commands.doctor import doctor_command
from grader.errors import GraderError
from grader.results import Status, report_from_dict
from grader.sandbox import isolation, linux, spawn
from tests.conftest import FIXTURES, describe, grade, make_submission

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="OS isolation is Linux-only")

GRADER_DIR = Path(grader.__file__).resolve().parent
ESCAPE = FIXTURES / "hostile" / "os_escape.py"
SECRET_VARIABLE = "ATTN_GRADE_TEST_SECRET"
PROCESS_GONE_WAIT = 15.0   # upper bound for the zygote to reap what it killed (not a timing assertion)


def _fresh_level(level: str | None) -> None:
    """Detect again (capped at `level`); the next zygote (started fresh) uses it."""
    spawn.shutdown()
    if level is None:
        os.environ.pop(isolation.FORCE_ENV, None)
    else:
        os.environ[isolation.FORCE_ENV] = level
    isolation.detect_level(refresh=True)


def _grader_files() -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in GRADER_DIR.rglob("*") if p.is_file()}


def _marker_processes(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                pass
    return found


def _levels() -> list[str]:
    """This machine's level, and the weaker ones it can be capped to: `uid`
    (a root Docker container) where Python is readable by its uid, and
    `process` (leftovers are then killed by the zygote, not a PID namespace)."""
    best = isolation.detect_level()
    levels = [best.level]
    if best.level == isolation.STRICT and isolation.uid_level_problem() is None:
        levels.append(isolation.UID)
    if best.level != isolation.PROCESS:
        levels.append(isolation.PROCESS)
    return levels


@pytest.fixture(scope="module", params=_levels())
def escape(request, tmp_path_factory):
    """Grade the escaping submission once at one level; yield what happened."""
    level = request.param
    marker = f"attn_grade_marker_{secrets.token_hex(6)}"
    secret = secrets.token_hex(16)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.setblocking(False)
    # At the `process` level nothing stops the write into the grader package:
    # aim it at a decoy, so that no other test grading in parallel sees the
    # real package change (its fingerprint check would stop it, rightly).
    target = GRADER_DIR if level != isolation.PROCESS else tmp_path_factory.mktemp("decoy-grader")
    text = (ESCAPE.read_text(encoding="utf-8")
            .replace("__GRADER_DIR__", str(target)).replace("__JUDGE_PID__", str(os.getpid()))
            .replace("__PORT__", str(listener.getsockname()[1])).replace("__SECRET__", secret)
            .replace("__MARKER__", marker))
    classmate = make_submission(tmp_path_factory.mktemp("classmate") / "submission", base=None,
                                overrides={"ex01_attention.py": "# a classmate's work\n"}) / "ex01_attention.py"
    text = text.replace("__CLASSMATE__", str(classmate))
    submission = make_submission(tmp_path_factory.mktemp("escape") / "submission", {"ex01_attention.py": text})
    before = _grader_files()
    os.environ[SECRET_VARIABLE] = secret
    try:
        _fresh_level(level)   # a zygote started now would inherit the secret: the worker must not
        report = grade(submission, 1, max_examples=3, call_timeout=5.0)
        after = _grader_files()
        result = report.exercises[0]
        probes = dict(re.findall(r"^PROBE ([\w-]+): (.*)$", result.output, re.M))
        yield SimpleNamespace(level=level, report=report, result=result, probes=probes, marker=marker,
                              listener=listener, before=before, after=after, secret=secret,
                              classmate=classmate.read_text(encoding="utf-8"))
    finally:
        os.environ.pop(SECRET_VARIABLE, None)
        listener.close()
        for pid in _marker_processes(marker):   # never leave one behind, even when a test fails
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        for stray in GRADER_DIR.rglob(f"{marker}*"):
            stray.unlink()
        if level != _levels()[0]:
            _fresh_level(None)   # later tests get the machine's own level again
        else:
            os.environ.pop(isolation.FORCE_ENV, None)


def _need(escape, *levels: str) -> None:
    if escape.level not in levels:
        pytest.skip(f"only the {'/'.join(levels)} level defends this; this run is {escape.level} "
                    f"({'; '.join(isolation.detect_level().reasons)})")


def test_the_level_is_detected_and_in_the_json_report(escape):
    sandbox = escape.report.to_dict()["sandbox"]
    assert sandbox["level"] == escape.level
    assert set(sandbox) >= {"level", "network", "uid", "filesystem"}
    assert sandbox["network"] is not (escape.level == isolation.STRICT or sandbox["seccomp"])
    if escape.level != isolation.PROCESS:
        assert sandbox["uid"] == isolation.SANDBOX_UID
        assert sandbox["seccomp"] is (linux.seccomp_library() is not None)
    else:
        assert sandbox["uid"] == os.getuid() and sandbox["reasons"]
    assert report_from_dict(escape.report.to_dict()).sandbox == sandbox


def test_the_hostile_submission_gets_no_forged_points(escape):
    result = escape.result
    assert escape.probes, f"the submission's probes did not run:\n{describe(result)}\n{result.output[-2000:]}"
    assert result.status is Status.NOT_IMPLEMENTED, describe(result)
    assert result.points == 0.0


def test_the_grader_package_cannot_be_written(escape):
    _need(escape, isolation.STRICT, isolation.UID)
    assert escape.probes.get("grader-write") == "blocked", escape.probes
    assert escape.after == escape.before
    assert not list(GRADER_DIR.rglob(f"{escape.marker}*"))
    if escape.level == isolation.STRICT:
        assert escape.probes.get("grader-visible") == "no"


def test_a_classmates_submission_cannot_be_rewritten(escape):
    _need(escape, isolation.STRICT, isolation.UID)
    assert escape.probes.get("classmate-write", "").startswith("blocked"), escape.probes
    assert escape.classmate == "# a classmate's work\n"


def test_the_judges_proc_entries_are_out_of_reach(escape):
    _need(escape, isolation.STRICT, isolation.UID)
    reached = escape.probes.get("judge-proc", "?")
    if escape.level == isolation.STRICT:  # not even listed: a PID namespace of its own
        assert reached == "blocked", escape.probes
    else:  # another uid: /proc/<judge>/cmdline is world-readable, fds and environment are not
        assert "fd" not in reached and "environ" not in reached, escape.probes


def test_the_judges_environment_is_not_visible(escape):
    assert escape.probes.get("secret-env") == "absent", escape.probes
    names = set(filter(None, escape.probes.get("env-names", "").split(",")))
    allowed = isolation.ENV_ALLOWLIST | {"HOME", "TMPDIR", "TMP", "TEMP"}
    assert all(n in allowed or n.startswith("LC_") for n in names), names - allowed
    assert escape.secret not in escape.result.output


def test_no_connection_reaches_a_loopback_listener(escape):
    _need(escape, isolation.STRICT)
    assert escape.probes.get("network", "").startswith("refused"), escape.probes
    with pytest.raises(BlockingIOError):
        escape.listener.accept()


def test_a_detached_process_does_not_survive_grading(escape):
    assert escape.probes.get("daemon") == "started", escape.probes
    deadline = time.monotonic() + PROCESS_GONE_WAIT
    while _marker_processes(escape.marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _marker_processes(escape.marker)


# ---------------------------------------------------------------------- plain functions
def test_require_isolation_refuses_a_weaker_level_unless_allowed():
    weak = isolation.info_for(isolation.PROCESS, ("no namespaces here",))
    with pytest.raises(GraderError, match="process.*uid.*no namespaces here"):
        isolation.require_isolation(isolation.UID, allow_weak=False, info=weak)
    assert isolation.require_isolation(isolation.UID, allow_weak=True, info=weak) is weak
    strict = isolation.info_for(isolation.STRICT)
    assert isolation.require_isolation(isolation.UID, allow_weak=False, info=strict) is strict


def test_the_weakest_worker_names_the_report_level():
    strict, uid = isolation.info_for(isolation.STRICT), isolation.info_for(isolation.UID, ("x",))
    assert isolation.weakest([strict, None, uid]) is uid
    assert isolation.weakest([None]) is None
    assert isolation.SandboxInfo.from_dict(uid.to_dict()) == uid
    assert isolation.SandboxInfo.from_dict({"level": "bogus"}).level == isolation.PROCESS


def test_a_forced_level_says_why(monkeypatch):
    monkeypatch.setenv(isolation.FORCE_ENV, isolation.PROCESS)
    try:
        info = isolation.detect_level(refresh=True)
        assert info.level == isolation.PROCESS
        assert info.network
        assert any(isolation.FORCE_ENV in r for r in info.reasons)
    finally:
        monkeypatch.delenv(isolation.FORCE_ENV)
        isolation.detect_level(refresh=True)


def test_doctor_names_the_level_and_why_not_strict(monkeypatch):
    out = CliRunner().invoke(doctor_command).output
    assert f"sandbox level: {isolation.detect_level().level}" in out
    monkeypatch.setenv(isolation.FORCE_ENV, isolation.PROCESS)
    try:
        isolation.detect_level(refresh=True)
        out = CliRunner().invoke(doctor_command).output
        assert "sandbox level: process" in out
        assert "not strict, because:" in out and isolation.FORCE_ENV in out
        assert "--allow-weak-isolation" in out
    finally:
        monkeypatch.delenv(isolation.FORCE_ENV)
        isolation.detect_level(refresh=True)
