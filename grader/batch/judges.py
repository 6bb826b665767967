"""Judge processes and the pool that feeds them jobs.

A judge (`python -m grader.batch.serve`, see serve.py) keeps torch, pytest
and its worker zygote warm across submissions and never imports student code
(its workers do).  `Judge` sends one job at a time and waits for the reply
under a deadline; a judge that runs past it or dies is killed (its whole
process group) and started afresh for the next job, and that job gets a
TIMEOUT or CRASHED reply.  `JudgePool` runs N judges on a
`concurrent.futures` thread pool, one thread per judge.
"""

from __future__ import annotations

import os
import queue
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from grader.batch.jobs import GradingJob, JudgeReply
from grader.results import Status

_IMPORT_ROOT = Path(__file__).resolve().parents[2]    # the folder `grader` is imported from
MAX_REPLY_BYTES = 64 * 1024 * 1024                    # a report is kilobytes; more is not a report


class Judge:
    """One judge process, one job at a time."""

    def __init__(self, log: Path, *, workdir: Path | None = None, python: str = sys.executable) -> None:
        self.log_path = log
        self.workdir = workdir or log.parent
        self.python = python
        self.proc: subprocess.Popen | None = None
        self.buffer = b""

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_IMPORT_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([self.python, "-m", "grader.batch.serve"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                         cwd=str(self.workdir), env=env, start_new_session=True)
        self.buffer = b""

    def run(self, job: GradingJob, timeout: float) -> JudgeReply:
        """Grade `job`; the reply is always for this job (see JudgeReply.for_job)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(job.wire().encode())
            proc.stdin.flush()
        except (OSError, ValueError):
            return self._died(job)
        deadline = time.monotonic() + timeout
        fd = proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return JudgeReply.failed(job.id, Status.TIMEOUT,
                                         f"grading took longer than {timeout:g} s; the judge was stopped")
            if len(self.buffer) > MAX_REPLY_BYTES:
                self.kill()
                return JudgeReply.failed(job.id, Status.ERROR, "the judge's reply was too large; "
                                                               "the judge was stopped")
            try:
                ready, _, _ = select.select([fd], [], [], min(left, 1.0))
                if not ready:
                    continue
                chunk = os.read(fd, 1 << 20)
            except (OSError, ValueError):      # the pipe was closed by kill()
                return self._died(job)
            if not chunk:
                return self._died(job)
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return JudgeReply.from_wire(line).for_job(job)

    def _died(self, job: GradingJob) -> JudgeReply:
        code = self.proc.poll() if self.proc else None
        self.kill()
        tail = ""
        try:
            tail = self.log_path.read_text(errors="replace")[-800:].strip()
        except OSError:
            pass
        return JudgeReply.failed(job.id, Status.CRASHED,
                                 f"the judge process died (exit status {code})"
                                 + (f": {tail.splitlines()[-1]}" if tail else ""))

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            try:
                proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass

    def close(self) -> None:
        """Ask the judge to finish (end of its input); kill it if it does not."""
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=20)
            self.proc = None
            if proc.stdout:
                proc.stdout.close()
        except (OSError, subprocess.TimeoutExpired):
            self.kill()


class JudgePool:
    """`count` judges graded on a thread pool; `grade` yields (job, reply) as they finish."""

    def __init__(self, count: int, logs: Path, *, workdir: Path, timeout: float,
                 python: str = sys.executable) -> None:
        self.timeout = timeout
        self.judges = [Judge(logs / f"judge-{i + 1}.log", workdir=workdir, python=python)
                       for i in range(max(1, count))]
        self._idle: queue.SimpleQueue[Judge] = queue.SimpleQueue()
        for judge in self.judges:
            self._idle.put(judge)
        self._executor = ThreadPoolExecutor(len(self.judges), thread_name_prefix="attn-grade-judge")
        self._stopping = False
        self._futures: set[Future] = set()

    def _grade_one(self, job: GradingJob) -> tuple[GradingJob, JudgeReply]:
        judge = self._idle.get()
        try:
            if self._stopping:
                return job, JudgeReply.failed(job.id, Status.ERROR, "the batch was stopped")
            return job, judge.run(job, self.timeout)
        except Exception as exc:  # noqa: BLE001 - one job's failure, the batch goes on
            judge.kill()
            return job, JudgeReply.failed(job.id, Status.ERROR, f"batch error: {exc}")
        finally:
            self._idle.put(judge)

    def grade(self, jobs: Iterable[GradingJob]) -> Iterator[tuple[GradingJob, JudgeReply]]:
        pending: set[Future] = {self._executor.submit(self._grade_one, job) for job in jobs}
        self._futures |= pending
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            if pending:                    # interrupted: stop what runs, drop what waits
                self._stopping = True
                for future in pending:
                    future.cancel()

    def close(self) -> None:
        """Let idle judges finish; kill the ones still grading (an interrupted batch)."""
        if any(not future.done() for future in self._futures):
            self._stopping = True
        for judge in self.judges:
            judge.kill() if self._stopping else judge.close()
        self._executor.shutdown(wait=True, cancel_futures=True)
        for judge in self.judges:          # one started while we were stopping
            judge.kill()

    def __enter__(self) -> "JudgePool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
