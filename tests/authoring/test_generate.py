"""`attn-grade generate`: solutions/ -> exercises/ stubs and notebooks.

The committed exercises/ must be exactly what generate writes (one source of
truth), the output is byte-for-byte deterministic, `--check` names stale
files, and malformed markers are errors with file and line.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from grader import registry
from grader.authoring.generate import NOTEBOOKS, generated_texts, run, stub_texts
from grader.authoring.markers import MarkerError, make_stub, regions
from grader.authoring.notebooks import split_cells
from grader.cli import main
from grader.submission import notebook_source
from tests.conftest import EXERCISES, SOLUTIONS


def _body(text: str) -> str:
    """The module's code without its docstring, normalised by ast."""
    tree = ast.parse(text)
    if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(tree.body[0].value, ast.Constant):
        tree.body = tree.body[1:]
    return ast.dump(tree)


# ------------------------------------------------------------------ round trip
def test_committed_exercises_are_exactly_what_generate_writes():
    texts = generated_texts(SOLUTIONS)
    assert len(texts) == 2 * len(registry.EXERCISES)
    stale = [name for name, text in texts.items()
             if not (EXERCISES / name).is_file() or (EXERCISES / name).read_bytes() != text.encode()]
    assert not stale, f"exercises/ is out of date, run `attn-grade generate`: {stale}"
    extra = sorted(p.name for p in (EXERCISES / NOTEBOOKS).glob("*.ipynb")
                   if f"{NOTEBOOKS}/{p.name}" not in texts)
    assert not extra, f"notebooks not generated from any solution: {extra}"


def test_generate_is_deterministic(tmp_path):
    run(SOLUTIONS, tmp_path / "a")
    run(SOLUTIONS, tmp_path / "b")
    again = run(SOLUTIONS, tmp_path / "a")
    assert again.stale == [] and len(again.unchanged) == 2 * len(registry.EXERCISES)
    for path in sorted((tmp_path / "a").rglob("*.*")):
        twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
        assert path.read_bytes() == twin.read_bytes(), path


def test_generate_check_names_stale_files_and_writes_nothing(tmp_path):
    target = tmp_path / "exercises"
    shutil.copytree(EXERCISES, target)
    runner = CliRunner()
    ok = runner.invoke(main, ["generate", "--solutions", str(SOLUTIONS), "--exercises", str(target),
                              "--check"])
    assert ok.exit_code == 0, ok.output

    stub = target / "ex03_cross_attention.py"
    stub.write_text(stub.read_text() + "\n# edited by hand\n")
    (target / NOTEBOOKS / "ex05_positional_encoding.ipynb").unlink()
    bad = runner.invoke(main, ["generate", "--solutions", str(SOLUTIONS), "--exercises", str(target),
                               "--check"])
    assert bad.exit_code == 1
    assert "ex03_cross_attention.py" in bad.output and "ex05_positional_encoding.ipynb" in bad.output
    assert "# edited by hand" in stub.read_text()            # --check writes nothing
    fixed = runner.invoke(main, ["generate", "--solutions", str(SOLUTIONS), "--exercises", str(target)])
    assert fixed.exit_code == 0, fixed.output
    assert stub.read_bytes() == (EXERCISES / "ex03_cross_attention.py").read_bytes()
    assert runner.invoke(main, ["generate", "--solutions", str(SOLUTIONS), "--exercises", str(target),
                                "--check"]).exit_code == 0


# ------------------------------------------------------------------ stubs
def test_stubs_keep_signatures_and_raise_not_implemented():
    for name, stub in stub_texts(SOLUTIONS).items():
        assert "SOLUTION" not in stub, name
        number = registry.by_module(Path(name).stem).number
        assert f"# TODO: Implement for Exercise {number}." in stub
        solution = ast.parse((SOLUTIONS / name).read_text())
        stubbed = ast.parse(stub)

        def signatures(tree):
            return sorted((n.name, ast.dump(n.args)) for n in ast.walk(tree)
                          if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and hasattr(n, "args"))
        assert signatures(solution) == signatures(stubbed), name


def test_one_line_marker():
    text = "def f(x):\n    '''Doc.'''\n    y = x + 1  # SOLUTION\n    return y\n"
    stub = make_stub(text, 4, "f.py")
    assert "y = x + 1" not in stub and 'raise NotImplementedError("Exercise 4: f")' in stub
    assert "return y" in stub


@pytest.mark.parametrize("text, line, words", [
    ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    pass\n    # END SOLUTION\n", 3, "nested"),
    ("def f():\n    # BEGIN SOLUTION\n    pass\n", 2, "never closed"),
    ("def f():\n    pass\n    # END SOLUTION\n", 3, "without"),
    ("def f():\n    # BEGIN SOLUTIONS\n    pass\n", 2, "unknown marker"),
    ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", 1, "outside any function"),
    ("def f():\n    # BEGIN SOLUTION\n    x = 1  # SOLUTION\n    # END SOLUTION\n", 3, "inside the block"),
    ("def f(:\n    pass\n", 1, "does not parse"),
])
def test_malformed_markers_name_file_and_line(text, line, words):
    with pytest.raises(MarkerError) as info:
        make_stub(text, 1, "solutions/ex01_attention.py")
    assert info.value.path == "solutions/ex01_attention.py" and info.value.line == line
    assert str(info.value).startswith(f"solutions/ex01_attention.py:{line}:")
    assert words in str(info.value)


def test_generate_command_reports_a_marker_error_with_file_and_line(tmp_path):
    solutions = tmp_path / "solutions"
    shutil.copytree(SOLUTIONS, solutions)
    path = solutions / "ex02_masks.py"
    lines = path.read_text().splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.strip() == "# END SOLUTION")
    del lines[first]                       # the first block is now never closed... until nested
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(main, ["generate", "--solutions", str(solutions),
                                       "--exercises", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "ex02_masks.py:" in result.output and "nested" in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_regions_of_every_solution_are_well_formed():
    for exercise in registry.EXERCISES:
        found = regions((SOLUTIONS / exercise.file).read_text(), exercise.file)
        assert found, exercise.file


# ------------------------------------------------------------------ notebooks
@pytest.mark.parametrize("exercise", registry.EXERCISES, ids=lambda e: e.module)
def test_notebook_layout(exercise):
    path = EXERCISES / NOTEBOOKS / exercise.notebook
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    cells = nb.cells
    ids = [c.id for c in cells]
    assert len(set(ids)) == len(ids) and all(i.startswith(f"ex{exercise.number:02d}-") for i in ids)
    lesson = cells[0]
    assert lesson.cell_type == "markdown"
    assert exercise.lesson in lesson.source and f"Exercise {exercise.number}" in lesson.source
    assert "Usual mistakes" in lesson.source       # from the solution's docstring
    assert cells[1].metadata.get("tags") == ["skip"] and "sys.path" in cells[1].source
    last = cells[-1]
    assert last.metadata.get("tags") == ["skip"]
    assert f"check({exercise.number})" in last.source and "from grader import check" in last.source
    # The graded module (notebook rules) is the stub's code.
    stub = (EXERCISES / exercise.file).read_text()
    assert _body(notebook_source(path).text) == _body(stub)
    assert all(not c.outputs and c.execution_count is None for c in cells if c.cell_type == "code")


def test_stub_cells_split_at_definitions():
    stub = (EXERCISES / "ex02_masks.py").read_text()
    cells = split_cells(stub)
    assert cells[0].startswith("import math")
    assert [c.split("(")[0] for c in cells[1:]] == [
        "def causal_mask", "def padding_mask", "def masked_attention", "class MaskedSelfAttention"]


def test_notebook_json_is_nbformat_layout():
    text = (EXERCISES / NOTEBOOKS / "ex01_attention.ipynb").read_text()
    data = json.loads(text)
    assert text == json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    assert data["nbformat"] == 4 and data["nbformat_minor"] == 5
