"""`attn-grade batch`, `merge` and `diff`: grade a whole class.

    attn-grade batch SUBMISSIONS_DIR --jobs 2 --output grades.csv [--shard 1/4]
    attn-grade merge shard-*.json --output gradebook.csv
    attn-grade diff old.json new.json

One job per module:

    discover.py   the students of a class folder, exercises, shards
    snapshot.py   a judge-owned read-only copy of each submission, hashed
    cache.py      reports cached by snapshot hash + grader fingerprint (outside the class folder)
    jobs.py       typed job and reply records, and their wire form
    judges.py     judge processes and the pool feeding them (concurrent.futures)
    serve.py      the judge process itself (`python -m grader.batch.serve`)
    run.py        the batch: all of the above, in order
    gradebook.py  rows and the gradebook model
    writers.py    the gradebook's CSV and JSON, read back
    lms.py        Canvas / Moodle import files from a roster
    feedback.py   one report per student to send back
    merge.py      shards joined
    diff.py       what changed between two runs, and why
    flags.py      duplicate and similarity flags
    progress.py   the progress display

The click commands are in grader/commands/batch.py.
"""

from __future__ import annotations

from grader.batch.discover import hidden_tests_exist


__all__ = ["hidden_tests_exist"]
