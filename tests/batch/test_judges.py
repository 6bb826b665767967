"""Judge processes: a reply is accepted only for the job given; a judge that dies costs one reply.

Fake judges (shell scripts standing in for `python`) keep these tests free of torch."""

from __future__ import annotations

import json
from pathlib import Path

from grader.batch.jobs import GradingJob, GradingSettings
from grader.batch.judges import Judge, JudgePool
from grader.results import Status
from tests.reports import fixed_report

FIXED_EXERCISES = tuple(e.number for e in fixed_report().exercises)

JOB = dict(path="x", exercises=FIXED_EXERCISES, settings=GradingSettings(seed=1))


def fake_python(tmp_path: Path, script: str) -> str:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\n" + script)
    fake.chmod(0o755)
    return str(fake)


def test_a_judge_that_dies_costs_one_reply(tmp_path):
    python = fake_python(tmp_path, "echo 'boom: the judge could not start' >&2\nexit 7\n")
    reply = Judge(tmp_path / "logs" / "judge.log", python=python).run(GradingJob(**JOB), timeout=30)
    assert not reply.ok and reply.status is Status.CRASHED and "boom" in reply.message


def test_a_forged_reply_for_another_job_is_not_a_result(tmp_path):
    report = json.dumps({"id": "0123456789abcdef", "ok": True, "report": fixed_report().to_dict()})
    (tmp_path / "reply.json").write_text(report + "\n")
    python = fake_python(tmp_path, f"read line\ncat {tmp_path / 'reply.json'}\nsleep 30\n")
    judge = Judge(tmp_path / "logs" / "judge.log", python=python)
    try:
        reply = judge.run(GradingJob(**JOB), timeout=30)
    finally:
        judge.kill()
    assert not reply.ok and reply.status is Status.ERROR
    assert "answered for another job" in reply.message


def test_the_pool_answers_every_job_once(tmp_path):
    # an honest fake: echoes each job's id with a failure status it may use
    python = fake_python(tmp_path, 'while read line; do\n'
                         '  id=$(printf %s "$line" | sed \'s/.*"id": "\\([0-9a-f]*\\)".*/\\1/\')\n'
                         '  printf \'{"id": "%s", "ok": false, "status": "crashed", "message": "m"}\\n\' "$id"\n'
                         'done\n')
    jobs = [GradingJob(**JOB) for _ in range(5)]
    with JudgePool(2, tmp_path / "logs", workdir=tmp_path / "work", timeout=30, python=python) as pool:
        answered = list(pool.grade(jobs))
    assert sorted(j.id for j, _ in answered) == sorted(j.id for j in jobs)
    assert all(r.job_id == j.id and r.status is Status.CRASHED for j, r in answered)


def test_an_interrupted_pool_stops_its_judges(tmp_path):
    import os

    pids = tmp_path / "pids"
    # answers its first job, then hangs on the next one
    python = fake_python(tmp_path, f'echo $$ >> {pids}\nread line\n'
                         'id=$(printf %s "$line" | sed \'s/.*"id": "\\([0-9a-f]*\\)".*/\\1/\')\n'
                         'printf \'{"id": "%s", "ok": false, "status": "error", "message": "m"}\\n\' "$id"\n'
                         'read line\nsleep 1000\n')
    jobs = [GradingJob(**JOB) for _ in range(3)]
    with JudgePool(2, tmp_path / "logs", workdir=tmp_path / "work", timeout=600, python=python) as pool:
        for _job, reply in pool.grade(jobs):
            assert reply.status is Status.ERROR
            break                                   # the instructor pressed ^C
    assert all(judge.proc is None for judge in pool.judges)
    for pid in map(int, pids.read_text().split()):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"judge {pid} still runs")
