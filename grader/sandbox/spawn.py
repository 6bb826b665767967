"""Start worker processes, without importing torch in the judge.

Workers are forked from a zygote (zygote.py) that imported torch once, so a
fresh worker per exercise costs milliseconds.  The CLI calls `prewarm()`
first thing: the zygote imports torch while the judge imports torch, pytest
and hypothesis, so the two imports overlap instead of adding up.  Set
ATTN_GRADE_NO_ZYGOTE=1 to start every worker as a plain subprocess instead.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
ZYGOTE_START_TIMEOUT = 180.0
ZYGOTE_EXIT_TIMEOUT = 2.0


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
    env.pop("PYTHONSTARTUP", None)
    return env


_CWD: str | None = None


def _empty_cwd() -> str:
    """Start in an empty folder: `python -m` puts the cwd on sys.path."""
    global _CWD
    if _CWD is None or not os.path.isdir(_CWD):
        _CWD = tempfile.mkdtemp(prefix="attn-grade-cwd-")
    return _CWD


def _close(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


@dataclass
class Spawned:
    """A started worker: its pipes and how to ask about (or end) its life."""

    pid: int
    req_fd: int    # the judge writes requests here
    resp_fd: int   # and reads replies here
    out_fd: int    # the worker's stdout and stderr
    python: str
    proc: subprocess.Popen | None = None     # plain subprocess workers
    zygote: "Zygote | None" = None           # forked workers

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # pragma: no cover
            return True
        return self.zygote is None or self.zygote.status(self.pid) is None

    def wait_status(self, timeout: float = 2.0) -> int | None:
        """The raw wait status (None while running) -- see `exit_reason`."""
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return None
            return (-code) if code < 0 else (code << 8)  # as a wait status
        if self.zygote is None:
            return None
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.zygote.status(self.pid)
            if status is not None:
                return status
            time.sleep(0.02)
        return None

    def kill(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        _close(self.req_fd, self.resp_fd)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass


def exit_reason(status: int | None) -> str:
    if status is None:
        return "stopped answering"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        meaning = {"SIGSEGV": "segmentation fault", "SIGKILL": "killed, probably out of memory",
                   "SIGABRT": "aborted", "SIGBUS": "bus error"}.get(name, "")
        return f"{name}{': ' + meaning if meaning else ''}"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    return f"exit code {code}: the submission exited the interpreter (os._exit / sys.exit)"


def _pipes():
    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    out_r, out_w = os.pipe()
    return (req_r, req_w), (resp_r, resp_w), (out_r, out_w)


def spawn_process(python: str = sys.executable) -> Spawned:
    """A worker as a plain subprocess (pays the torch import)."""
    (req_r, req_w), (resp_r, resp_w), (out_r, out_w) = _pipes()
    proc = subprocess.Popen(
        [python, "-m", "grader.sandbox.worker", "--req-fd", str(req_r), "--resp-fd", str(resp_w)],
        pass_fds=(req_r, resp_w), stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w,
        start_new_session=True, cwd=_empty_cwd(), env=_env(), close_fds=True,
    )
    _close(req_r, resp_w, out_w)
    return Spawned(proc.pid, req_w, resp_r, out_r, python, proc=proc)


class Zygote:
    """The judge's end of a zygote process."""

    def __init__(self, python: str, warm: bool = True) -> None:
        self.python = python
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.proc = subprocess.Popen(
            [python, "-m", "grader.sandbox.zygote", str(theirs.fileno())]
            + (["--warm"] if warm else []),
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, cwd=_empty_cwd(), env=_env(), close_fds=True,
            start_new_session=True,
        )
        theirs.close()
        self.sock = ours
        self.lock = threading.Lock()
        self.ready = False
        self.buffer = b""

    def _line(self, timeout: float | None) -> str:
        self.sock.settimeout(timeout)
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(1024)
            if not chunk:
                raise OSError("the zygote exited")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def fork(self) -> Spawned:
        (req_r, req_w), (resp_r, resp_w), (out_r, out_w) = _pipes()
        with self.lock:
            try:
                if not self.ready:
                    if self._line(ZYGOTE_START_TIMEOUT) != "ready":
                        raise OSError("the zygote did not start")
                    self.ready = True
                socket.send_fds(self.sock, [b"spawn"], [req_r, resp_w, out_w])
                reply = self._line(30.0)
            finally:
                _close(req_r, resp_w, out_w)
        if not reply.startswith("pid "):
            _close(req_w, resp_r, out_r)
            raise OSError(f"the zygote answered {reply!r}")
        return Spawned(int(reply.split()[1]), req_w, resp_r, out_r, self.python, zygote=self)

    def status(self, pid: int) -> int | None:
        """The wait status of a forked worker, None while it runs."""
        with self.lock:
            try:
                self.sock.sendall(f"status {pid}\n".encode())
                reply = self._line(10.0).split()
            except OSError:
                return None
        if len(reply) == 3 and reply[2] != "running":
            return int(reply[2])
        return None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        if self.ready:
            # Seeing the socket close, it kills what workers left running, then exits.
            try:
                self.proc.wait(timeout=ZYGOTE_EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass


_ZYGOTES: dict[str, Zygote] = {}


def _use_zygote() -> bool:
    return os.environ.get("ATTN_GRADE_NO_ZYGOTE", "") in ("", "0")


def zygote(python: str = sys.executable, warm: bool = True) -> Zygote:
    z = _ZYGOTES.get(python)
    if z is None or not z.alive():
        z = _ZYGOTES[python] = Zygote(python, warm)
    return z


def prewarm(python: str = sys.executable, *, warm: bool = True) -> None:
    """Start the zygote now, so torch is imported by the time it is needed.
    `warm`: also pay for torch's compiler stack (meta kernels, optimizer
    steps) once; only worth it when a graded exercise needs it
    (registry.Exercise.warm_start)."""
    if _use_zygote():
        zygote(python, warm)


def take(python: str = sys.executable) -> Spawned:
    """A fresh worker: forked from the zygote, or a subprocess as a fallback."""
    if _use_zygote():
        try:
            return zygote(python).fork()
        except OSError:
            _ZYGOTES.pop(python, None)
    return spawn_process(python)


@atexit.register
def shutdown() -> None:
    """Stop the zygotes (their forked workers are stopped by their clients)
    and remove the workers' empty start folder."""
    global _CWD
    while _ZYGOTES:
        _ZYGOTES.popitem()[1].close()
    if _CWD is not None:
        shutil.rmtree(_CWD, ignore_errors=True)
        _CWD = None
