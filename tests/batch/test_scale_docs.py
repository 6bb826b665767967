"""The scale-out examples under docs/examples/: valid, and calling options the commands have.

The GitHub Actions matrix passes actionlint (as tests/test_workflows.py runs
it); the Slurm array script passes `bash -n` (and shellcheck when present).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess

import pytest

from grader.commands.batch import batch_command, merge_command
from tests.conftest import REPO
from tests.test_workflows import jobs, lint, run_scripts

EXAMPLES = REPO / "docs" / "examples"
MATRIX = EXAMPLES / "batch-matrix.yml"
SLURM = EXAMPLES / "batch-slurm.sh"
COMMANDS = {"batch": batch_command, "merge": merge_command}
VARIABLES = {"$SHARD": "2", "$task": "1", "$count": "8", "$jobs": "2", "$cache": "/c",
             '"${args[@]}"': "", "$submissions": "subs"}


def attn_grade_calls(script: str) -> list[list[str]]:
    """Each `attn-grade ...` command line of a shell script, variables filled in."""
    calls = []
    for line in script.replace("\\\n", " ").splitlines():
        line = line.strip()
        found = re.match(r"^(?:\.venv/bin/)?attn-grade\s+(.*)$", line)
        if not found:
            continue
        command = re.split(r"\s(?:\|\||&&)\s", found.group(1))[0]
        for name, value in VARIABLES.items():
            command = command.replace(name, value)
        calls.append(shlex.split(command))
    return calls


def check_calls(calls: list[list[str]]) -> None:
    for args in calls:
        COMMANDS[args[0]].make_context(args[0], list(args[1:]))


def test_the_matrix_workflow_passes_actionlint():
    lint(MATRIX)


def test_the_matrix_workflow_grades_shards_then_merges():
    text = MATRIX.read_text(encoding="utf-8")
    blocks = jobs(text)
    assert set(blocks) == {"grade", "merge"} and "needs: grade" in blocks["merge"]
    assert "shard: [1, 2, 3, 4]" in blocks["grade"]
    calls = [c for block in blocks.values() for s in run_scripts(block) for c in attn_grade_calls(s)]
    assert [c[0] for c in calls] == ["batch", "merge"]
    assert "--shard" in calls[0] and "2/4" in calls[0]
    check_calls(calls)
    for block in blocks.values():
        for script in run_scripts(block):
            assert "${{" not in script, "expressions reach scripts through env:, never inline"


def test_the_slurm_script_is_valid_bash_and_shards_by_array_task():
    result = subprocess.run(["bash", "-n", str(SLURM)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    text = SLURM.read_text(encoding="utf-8")
    assert re.search(r"^#SBATCH --array=1-\d+$", text, re.M)
    calls = attn_grade_calls(text)
    assert [c[0] for c in calls] == ["batch"] and "1/8" in calls[0]
    check_calls(calls)
    shellcheck = shutil.which("shellcheck")
    if shellcheck:
        result = subprocess.run([shellcheck, str(SLURM)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout


def test_a_wrong_option_would_be_caught():
    with pytest.raises(Exception):
        check_calls([["batch", "subs", "--shards", "1/2"]])
