"""The README's first two commands are the set-up, and .ci/run runs the second."""

from __future__ import annotations

import re

from tests.conftest import REPO


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_the_first_two_commands_install_then_grade_and_test():
    grade, test = readme_commands()[:2]
    for command in (grade, test):
        assert "-c constraints.txt" in command and "pip install" in command
    assert "attn-grade all --submission solutions" in grade and "--device cpu" in grade
    assert "pytest" in test


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert readme_commands()[1] in ci.splitlines()


def test_torch_is_pinned_only_through_constraints():
    assert "torch==2.13.0" in (REPO / "constraints.txt").read_text()
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'"torch>=2\.\d+"', pyproject) and "torch==" not in pyproject
