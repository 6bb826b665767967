"""LMS files from a roster: Canvas's gradebook import CSV and a Moodle import CSV;
nobody dropped silently."""

from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner

from grader.batch.gradebook import Gradebook, Row, RowStatus
from grader.batch.lms import CANVAS_IDENTITY, canvas_csv, moodle_csv, read_roster
from grader.batch.writers import write_gradebook
from grader.errors import GraderError
from tests.conftest import REPO

SAMPLE_ROSTER = REPO / "docs" / "sample-roster.csv"


def book() -> Gradebook:
    rows = [Row("alice", "", RowStatus.GRADED, {1: 10.0, 2: 7.5}, 20.0),
            Row("bob", "", RowStatus.TIMEOUT, {}, 20.0, note="grading took longer"),
            Row("zed", "", RowStatus.GRADED, {1: 3.0, 2: 0.0}, 20.0)]      # not on the roster
    return Gradebook(exercises=[1, 2], rows=rows, seed=1, fingerprint="f")


def table(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_sample_roster_reads():
    roster = read_roster(SAMPLE_ROSTER)
    assert sorted(roster) == ["alice", "bob", "carol"]
    assert roster["alice"].name == "Liddell, Alice" and roster["alice"].sis_login_id == "aliddell"


def test_canvas_import_csv():
    exported = canvas_csv(book(), read_roster(SAMPLE_ROSTER), "Transformers lab (4242)")
    rows = table(exported.text)
    assert rows[0] == [*CANVAS_IDENTITY, "Transformers lab (4242)"]
    assert rows[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert rows[1] == ["Points Possible", "", "", "", "", "20.00"]
    assert rows[2] == ["Liddell, Alice", "1001", "S-2024-001", "aliddell", "Section A", "17.50"]
    assert rows[3][0] == "Builder, Bob" and rows[3][5] == ""        # timed out: no score, reported
    assert rows[4][0] == "Danvers, Carol" and rows[4][5] == ""      # no submission: reported
    assert exported.unknown == ["zed"] and exported.missing == ["carol"] and exported.ungraded == ["bob"]
    text = "\n".join(exported.warnings())
    assert "zed" in text and "carol" in text and "bob" in text


def test_moodle_import_csv():
    rows = table(moodle_csv(book(), read_roster(SAMPLE_ROSTER)).text)
    assert rows[0] == ["Username", "ID number", "Email address", "Full name", "attn-grade"]
    assert rows[1] == ["aliddell", "S-2024-001", "alice@example.edu", "Liddell, Alice", "17.50"]


def test_roster_problems_are_one_line_errors(tmp_path):
    cases = {"no folder column": "name\nx\n", "twice": "folder\na\na\n", "typo": "folder,sis_id\na,1\n"}
    for name, text in cases.items():
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
        with pytest.raises(GraderError):
            read_roster(path)
    with pytest.raises(GraderError, match="no roster file"):
        read_roster(tmp_path / "nope.csv")
    path = tmp_path / "noid.csv"
    path.write_text("folder,name\nalice,Alice\n")
    with pytest.raises(GraderError, match="Canvas needs one"):
        canvas_csv(book(), read_roster(path))


def test_batch_checks_the_roster_before_grading(tmp_path):
    from grader.commands.batch import batch_command

    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "ex01_attention.py").write_text("x = 1\n")
    result = CliRunner().invoke(batch_command, [str(tmp_path), "--format", "canvas", "-e", "1"])
    assert result.exit_code == 2 and "--roster" in result.output
    roster = tmp_path / "roster.csv"
    roster.write_text("folder,email\nalice,a@b.c\n")          # Moodle could match her, Canvas cannot
    result = CliRunner().invoke(batch_command, [str(tmp_path), "--format", "canvas", "--roster",
                                                str(roster), "-e", "1", "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == 2 and "Canvas needs one" in result.output
    assert not (tmp_path / "x.csv").exists()


def test_write_outputs_writes_the_lms_file_and_the_gradebook_json(tmp_path):
    from grader.commands.batch import write_outputs

    written = write_outputs(book(), tmp_path / "canvas.csv", "canvas", read_roster(SAMPLE_ROSTER), "lab")
    assert [p.name for p in written] == ["canvas.csv", "canvas.json"]
    assert table((tmp_path / "canvas.csv").read_text())[0][-1] == "lab"
    assert write_gradebook(book(), tmp_path / "g.json")[0].read_text().startswith("{")
