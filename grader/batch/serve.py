"""The judge process: `python -m grader.batch.serve`.

One job per stdin line (GradingJob's wire form), one reply per line on the
original stdout (JudgeReply's, carrying the job's id); anything else printed
goes to stderr (the judge's log).  Torch, pytest and the worker zygote stay
warm across jobs; student code runs only in the workers.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback

from grader import registry
from grader.batch.jobs import GradingJob, JudgeReply
from grader.errors import GraderError
from grader.results import Status


def grade_job(job: GradingJob) -> JudgeReply:
    from grader import runner
    from grader.submission import Submission

    try:
        exercises = [registry.get(n) for n in job.exercises]
        settings = job.settings
        options = runner.GradingOptions(seed=settings.seed, device=settings.device, train=settings.train,
                                        max_examples=settings.max_examples,
                                        call_timeout=settings.call_timeout,
                                        dependencies=settings.dependencies)
        report = runner.grade(job.path, exercises, options)
        try:
            Submission.from_path(job.path).relabel_report(report)
        except GraderError:
            pass
        return JudgeReply.graded(job.id, report)
    except GraderError as exc:
        return JudgeReply.failed(job.id, Status.ERROR, exc.message)
    except Exception as exc:  # noqa: BLE001 - one submission's grader error
        traceback.print_exc()
        return JudgeReply.failed(job.id, Status.ERROR, f"grader error: {type(exc).__name__}: {exc}")


def serve() -> None:
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def stop(*_):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    from grader.sandbox import spawn

    spawn.prewarm()
    from grader import runner  # noqa: PLC0415 - after prewarm: torch imports overlap

    runner.become_judge_process()   # one torch thread for the oracles: judges run side by side
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                job = GradingJob.from_wire(line)
            except (ValueError, KeyError, TypeError) as exc:
                replies.write(JudgeReply.failed(None, Status.ERROR, f"unreadable job ({exc})").wire())
                continue
            replies.write(grade_job(job).wire())
            replies.flush()
    finally:
        spawn.shutdown()


if __name__ == "__main__":  # pragma: no cover - the judge process
    serve()
