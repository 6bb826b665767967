"""The CLI: exit codes, one-line errors, JSON on stdout alone."""

from __future__ import annotations

import json

from click.testing import CliRunner

from grader.cli import main
from grader.errors import ExitCode
from tests.conftest import EXERCISES, SOLUTIONS, make_submission


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_list_shows_every_exercise():
    result = run("list")
    assert result.exit_code == 0
    for slug in ("attention", "masks", "multi-head", "training"):
        assert slug in result.stdout


def test_unknown_exercise_is_a_usage_error_in_one_line():
    result = run("exercise", "42", "--submission", str(SOLUTIONS))
    assert result.exit_code == ExitCode.USAGE_ERROR
    assert "no exercise '42'" in result.stderr and "Traceback" not in result.stderr


def test_missing_submission_is_a_usage_error(tmp_path):
    result = run("exercise", "1", "--submission", str(tmp_path / "nope"))
    assert result.exit_code == ExitCode.USAGE_ERROR
    assert "submission not found" in result.stderr and "Traceback" not in result.stderr


def test_json_output_is_the_only_thing_on_stdout():
    result = run("exercise", "attention", "--submission", str(SOLUTIONS), "--format", "json",
                 "--seed", "5")
    assert result.exit_code == ExitCode.ALL_PASSED, result.stderr
    data = json.loads(result.stdout)
    assert data["schema"] == 1 and data["seed"] == 5
    assert data["total"] == data["max_total"] == 10.0
    ex = data["exercises"][0]
    assert ex["number"] == 1 and ex["slug"] == "attention" and ex["status"] == "passed"
    assert all(t["status"] == "passed" for t in ex["tests"])


def test_stubs_exit_with_some_failed():
    result = run("exercise", "1", "--submission", str(EXERCISES), "--format", "json")
    assert result.exit_code == ExitCode.SOME_FAILED
    data = json.loads(result.stdout)
    assert {t["status"] for t in data["exercises"][0]["tests"]} == {"not_implemented"}


def _messages(tmp_path, text):
    sub = make_submission(tmp_path / "s", {"ex01_attention.py": text}, base=None)
    result = run("exercise", "1", "--submission", str(sub), "--format", "json")
    assert result.exit_code == ExitCode.SOME_FAILED, result.stderr
    assert "Traceback (most recent call last)" not in result.stdout + result.stderr
    return json.loads(result.stdout)["exercises"][0]


def test_a_syntax_error_gets_a_one_line_explanation(tmp_path):
    ex = _messages(tmp_path, "def scaled_dot_product_attention(q, k, v)\n    return q\n")
    assert ex["status"] == "error"
    assert all("syntax error in" in t["message"] and "line 1" in t["message"] for t in ex["tests"])


def test_missing_names_and_wrong_signatures_are_explained(tmp_path):
    ex = _messages(tmp_path, "import torch\ndef scaled_dot_product_attention(query, key):\n"
                             "    return query, key\n")
    messages = {t["name"]: t["message"] for t in ex["tests"]}
    assert "cannot be called the way the contract calls it" in messages["matches_the_equation"]
    assert "defines no `SelfAttention`" in messages["self_attention_matches_the_equation"]


def test_import_errors_name_the_student_line(tmp_path):
    ex = _messages(tmp_path, "import torch\nraise RuntimeError('boom at import')\n")
    test = ex["tests"][0]
    assert test["status"] == "error" and "boom at import" in test["message"]
    assert 'ex01_attention.py", line 2' in test["traceback"]
