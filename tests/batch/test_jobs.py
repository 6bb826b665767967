"""Job and reply records: the wire form round-trips, and a reply counts only for its own job."""

from __future__ import annotations

from grader.batch.jobs import GradingJob, GradingSettings, JudgeReply
from grader.results import Status
from tests.reports import fixed_report

FIXED_EXERCISES = tuple(e.number for e in fixed_report().exercises)


def job(**extra) -> GradingJob:
    return GradingJob(path="/snap/00001", exercises=FIXED_EXERCISES, settings=GradingSettings(seed=7), **extra)


def test_a_job_round_trips_and_ids_are_unguessable():
    one, two = job(), job()
    assert GradingJob.from_wire(one.wire()) == one
    assert one.id != two.id and len(one.id) >= 16


def test_a_reply_round_trips():
    mine = job()
    graded = JudgeReply.graded(mine.id, fixed_report())
    back = JudgeReply.from_wire(graded.wire())
    assert back.ok and back.for_job(mine) is back
    assert back.report.to_dict() == fixed_report().to_dict()
    failed = JudgeReply.from_wire(JudgeReply.failed(mine.id, Status.TIMEOUT, "slow").wire())
    assert (failed.ok, failed.status, failed.message) == (False, Status.TIMEOUT, "slow")


def test_a_reply_for_another_job_is_an_error_never_a_result():
    mine, other = job(), job()
    forged = JudgeReply.from_wire(JudgeReply.graded(other.id, fixed_report()).wire()).for_job(mine)
    assert not forged.ok and forged.status is Status.ERROR
    assert "answered for another job" in forged.message and forged.job_id == mine.id


def test_a_report_for_other_exercises_is_discarded():
    mine = GradingJob(path="x", exercises=(1,), settings=GradingSettings(seed=1))
    reply = JudgeReply.graded(mine.id, fixed_report()).for_job(mine)
    assert not reply.ok and "exercises asked for" in reply.message


def test_malformed_replies_are_errors():
    for line in (b"not json", b'{"id": "x", "ok": true}', b'{"id": "x", "ok": false, "status": "passed"}',
                 b"[1, 2]"):
        reply = JudgeReply.from_wire(line)
        assert not reply.ok and reply.status is Status.ERROR, line
