"""Notebook submissions and check() in a running kernel.

- a generated notebook filled with the solution's code is the solution
  (every exercise, statically) and scores full marks (exercises 1 and 2,
  graded end to end);
- notebooks saved by Jupyter and by Colab (tests/fixtures/notebooks/) grade;
- a corrupt notebook, another exercise's notebook, a syntax error: clear
  messages that name the notebook, the cell and the problem;
- check(N) inside a real IPython kernel (nbclient + ipykernel) grades the
  code the kernel ran, from its input history.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from grader import registry
from grader.authoring.notebooks import split_cells
from grader.notebook import module_from_history
from grader.results import Status
from grader.runner import precheck
from grader.registry import CONTRACT_NAMES
from grader.submission import Submission, notebook_source
from tests.conftest import EXERCISES, FIXTURES, SOLUTIONS, describe, grade

NOTEBOOKS = FIXTURES / "notebooks"


def filled_notebook(exercise, dest: Path, solution: Path = SOLUTIONS) -> Path:
    """The generated notebook of `exercise` with its stub cells replaced by
    the solution's code, as a student would fill it."""
    nb = json.loads((EXERCISES / "notebooks" / exercise.notebook).read_text())
    code = iter(split_cells((solution / exercise.file).read_text()))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "skip" not in cell["metadata"].get("tags", []):
            cell["source"] = next(code)
    assert next(code, None) is None
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(nb, indent=1))
    return dest


def _code(text: str) -> str:
    tree = ast.parse(text)
    if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(tree.body[0].value, ast.Constant):
        tree.body = tree.body[1:]
    return ast.dump(tree)


def test_contract_names_match_the_solutions():
    for exercise in registry.EXERCISES:
        tree = ast.parse((SOLUTIONS / exercise.file).read_text())
        public = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))
                  and not n.name.startswith("_")}
        assert set(CONTRACT_NAMES[exercise.module]) == public, exercise.module


@pytest.mark.parametrize("exercise", registry.EXERCISES, ids=lambda e: e.module)
def test_filled_notebook_is_the_solution(exercise, tmp_path):
    """Statically, for every exercise: the module graded from the filled
    notebook is the solution's code, so it gets the solution's grade."""
    path = filled_notebook(exercise, tmp_path / exercise.notebook)
    source = notebook_source(path)
    assert _code(source.text) == _code((SOLUTIONS / exercise.file).read_text())
    sub = Submission.from_path(tmp_path)
    assert not sub.files[exercise.module].problem


@pytest.mark.slow
def test_filled_notebooks_of_exercises_1_and_2_score_full_marks(tmp_path):
    sub = tmp_path / "sub"
    for number in (1, 2):
        filled_notebook(registry.get(number), sub / registry.get(number).notebook)
    report = grade(sub, 1, 2, max_examples=5)   # the notebook path is under test, not the bank
    for result in report.exercises:
        assert result.status is Status.PASSED, describe(result)
        assert result.points == pytest.approx(result.max_points)


@pytest.mark.slow
def test_jupyter_and_colab_saved_notebooks_score_full_marks(tmp_path):
    """JupyterLab (nbformat 4.5, cell ids, outputs, magics, `skip` tags, a
    help line, a `check(1)` cell left untagged) and Colab (nbformat 4.0, ids in metadata, `!` and `%cd`,
    saved under Colab's `Copy of ...` name)."""
    sub = tmp_path / "sub"
    sub.mkdir()
    jupyter = json.loads((NOTEBOOKS / "jupyter_ex01_attention.ipynb").read_text())
    jupyter["cells"].append({"cell_type": "code", "execution_count": None, "id": "untagged-check",
                             "metadata": {}, "outputs": [],       # not tagged skip: a no-op when graded
                             "source": ["from grader import check\n", "check(1)"]})
    (sub / "ex01_attention.ipynb").write_text(json.dumps(jupyter))
    shutil.copy(NOTEBOOKS / "colab_ex02_masks.ipynb", sub / "Copy of ex02_masks.ipynb")
    report = grade(sub, 1, 2, max_examples=5)
    for result in report.exercises:
        assert result.status is Status.PASSED, describe(result)


def test_jupyter_and_colab_notebooks_are_read_by_the_contract_rules():
    jupyter = notebook_source(NOTEBOOKS / "jupyter_ex01_attention.ipynb")
    assert "pip install" not in jupyter.text and "%matplotlib" not in jupyter.text
    assert "quick test" not in jupyter.text                  # a `skip`-tagged cell
    assert "torch.softmax?" not in jupyter.text and "%%time" not in jupyter.text
    assert "m = SelfAttention(8)" in jupyter.text             # the %%time cell's body stays
    ast.parse(jupyter.text)
    colab = notebook_source(NOTEBOOKS / "colab_ex02_masks.ipynb")
    assert "nvidia-smi" not in colab.text and "%cd" not in colab.text
    assert "def causal_mask" in colab.text
    ast.parse(colab.text)


# ------------------------------------------------------------------ problems
def _nb(*sources: str, markdown_first: bool = True) -> str:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "# My notebook"}] if markdown_first else []
    cells += [{"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None}
              for s in sources]
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})


def test_corrupt_and_empty_notebooks_have_clear_messages(tmp_path):
    (tmp_path / "ex01_attention.ipynb").write_text(_nb("import torch")[:-40])   # cut short
    (tmp_path / "ex02_masks.ipynb").write_text("")
    (tmp_path / "ex03_cross_attention.ipynb").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (tmp_path / "ex04_multi_head.ipynb").write_text(_nb())          # no code cells
    (tmp_path / "ex05_positional_encoding.py").write_text("x = 1\n")
    sub = Submission.from_path(tmp_path)
    truncated = sub.syntax_error("ex01_attention")
    assert "ex01_attention.ipynb is not a readable notebook" in truncated
    assert "JSON is broken at line 1" in truncated and "save it again" in truncated
    assert "is empty" in sub.syntax_error("ex02_masks")
    assert "not a readable notebook" in sub.syntax_error("ex03_cross_attention")
    assert "holds no code" in sub.syntax_error("ex04_multi_head")
    assert sub.syntax_error("ex05_positional_encoding") is None   # a broken notebook costs only its exercise
    problem = precheck(sub, registry.get(1))
    assert problem.status is Status.ERROR and "not a readable notebook" in problem.message


def test_notebook_of_another_exercise_says_so(tmp_path):
    """ex02's code saved as ex03_cross_attention.ipynb: told by the names it defines."""
    ex02 = split_cells((SOLUTIONS / "ex02_masks.py").read_text())
    (tmp_path / "ex03_cross_attention.ipynb").write_text(_nb(*ex02))
    sub = Submission.from_path(tmp_path)
    message = sub.syntax_error("ex03_cross_attention")
    assert message.startswith("ex03_cross_attention.ipynb holds the code of exercise 2 (masks), "
                              "not exercise 3 (cross-attention)")
    assert "none of Attention" in message and "rename this one ex02_masks.ipynb" in message
    # The same holds for a .py file, and as the single file of a submission.
    (tmp_path / "ex04_multi_head.py").write_text((SOLUTIONS / "ex05_positional_encoding.py").read_text())
    single = Submission.from_path(tmp_path / "ex04_multi_head.py")
    assert "holds the code of exercise 5" in single.syntax_error("ex04_multi_head")


def test_a_notebook_that_imports_an_earlier_exercise_is_not_another_exercise(tmp_path):
    stub = (EXERCISES / "ex03_cross_attention.py").read_text()
    (tmp_path / "ex03_cross_attention.ipynb").write_text(_nb(*split_cells(stub)))
    assert Submission.from_path(tmp_path).syntax_error("ex03_cross_attention") is None


def test_syntax_error_points_at_the_cell(tmp_path):
    cells = ["import torch\n", "def scaled_dot_product_attention(q, k, v):\n    return (q @ k\n",
             "class SelfAttention:\n    pass\n"]
    (tmp_path / "ex01_attention.ipynb").write_text(_nb(*cells))
    message = Submission.from_path(tmp_path).syntax_error("ex01_attention")
    # cell 1 is the markdown cell: the broken code is in cell 3, its line 2
    assert "ex01_attention.ipynb, cell 3, line 2" in message, message
    assert "the cell starting 'def scaled_dot_product_attention(q, k, v):'" in message
    assert "return (q @ k" in message


def test_runtime_locations_are_relabelled_as_cells(tmp_path):
    cells = ["import torch\n", "def f():\n    x = 1\n    raise ValueError(x)\n"]
    (tmp_path / "ex01_attention.ipynb").write_text(_nb(*cells))
    sub = Submission.from_path(tmp_path)
    text = 'Traceback:\n  File "ex01_attention.py", line 5, in f\n    raise ValueError(x)'
    assert 'File "ex01_attention.ipynb", cell 3, line 3, in f' in sub.relabel(text)
    assert sub.relabel('File "ex02_masks.py", line 5') == 'File "ex02_masks.py", line 5'


def test_nbformat_3_and_odd_names(tmp_path):
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": ""}, "worksheets": [{"cells": [
        {"cell_type": "heading", "level": 1, "source": ["Old"], "metadata": {}},
        {"cell_type": "code", "input": ["import torch\n", "x = 1"], "language": "python",
         "outputs": [], "metadata": {}, "prompt_number": 1}]}]}
    (tmp_path / "ex05_positional_encoding (1).ipynb").write_text(json.dumps(v3))
    sub = Submission.from_path(tmp_path)
    assert "ex05_positional_encoding" in sub.files
    assert "x = 1" in sub.files["ex05_positional_encoding"].text


def test_a_single_notebook_finds_the_exercises_it_imports(tmp_path):
    """exercises/notebooks/ex03_cross_attention.ipynb next to exercises/ex02_masks.py."""
    for module in ("ex01_attention", "ex02_masks"):
        shutil.copy(SOLUTIONS / f"{module}.py", tmp_path / f"{module}.py")
    path = filled_notebook(registry.get(3), tmp_path / "notebooks" / "ex03_cross_attention.ipynb")
    sub = Submission.from_path(path)
    assert set(sub.files) == {"ex03_cross_attention", "ex02_masks"}
    renamed = tmp_path / "notebooks" / "attention homework.ipynb"
    shutil.copy(path, renamed)
    assert "ex03_cross_attention" in Submission.from_path(renamed).files    # told by its names


# ------------------------------------------------------------------ check(): history
def test_history_keeps_what_the_api_needs_and_the_last_definitions():
    cells = [
        (1, "import torch\nimport tourch_typo_never_used\nx = torch.randn(2, 3, 4)"),
        (2, "def scaled_dot_product_attention(q, k, v):\n    raise NotImplementedError"),
        (3, "out, w = scaled_dot_product_attention(x, x, x)"),         # raised in the kernel
        (4, "!pip install torch\n%time y = 1\nNEG = -1e9"),
        (5, "def broken(:\n    pass"),                                  # never ran
        (6, "import math\ndef scaled_dot_product_attention(q, k, v):\n"
            "    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)) + NEG * 0, -1)\n"
            "    return w @ v, w"),
        (7, "class SelfAttention(torch.nn.Module):\n    pass"),
        (8, "print(out.shape)"),
        (9, "from grader import check\ncheck(1)"),
    ]
    built = module_from_history(cells, "ex01_attention")
    assert built.defines == ["SelfAttention", "scaled_dot_product_attention"]
    text = built.text
    ast.parse(text)
    assert "raise NotImplementedError" not in text        # superseded by In [6]
    assert "tourch" not in text and "randn" not in text and "print" not in text
    body = text.split("\n", 1)[1]                      # after the header comment
    assert "check(" not in body and "grader" not in body
    assert "NEG = -1e9" in text and "pip" not in text
    assert built.cells == [1, 4, 6, 7]
    assert built.skipped and "In [5]" in built.skipped[0]
    line = text.splitlines().index("    return w @ v, w") + 1
    assert built.locate(line) == "In [6], line 4"


def test_history_of_another_exercise_defines_nothing_for_this_one():
    cells = [(1, (SOLUTIONS / "ex02_masks.py").read_text())]
    assert module_from_history(cells, "ex03_cross_attention").defines == []


def test_check_with_an_interactive_shell_without_grading(monkeypatch, tmp_path, capsys):
    """kernel_history reads a real IPython shell; nothing graded when the
    exercise's names were never defined."""
    interactiveshell = pytest.importorskip("IPython.core.interactiveshell")
    from grader import notebook

    shell = interactiveshell.InteractiveShell.instance()
    try:
        shell.run_cell("import math\ndef causal_mask(size, device=None):\n    return None",
                       store_history=True)
        history = notebook.kernel_history(shell)
        assert any("def causal_mask" in text for _, text in history)
        monkeypatch.setattr(notebook, "run_judge", lambda *a, **k: pytest.fail("must not grade"))
        assert notebook.check(3, shell=shell) is None
        assert "Nothing to grade yet" in capsys.readouterr().out
    finally:
        interactiveshell.InteractiveShell.clear_instance()


# ------------------------------------------------------------------ check(): a real kernel
@pytest.mark.slow
def test_check_in_a_real_kernel_grades_the_cells_that_ran(tmp_path):
    """nbclient runs the generated notebook of exercise 3, filled with the
    solution, in an ipykernel; its last cell is `check(3)`: the code comes
    from the kernel's history, ex02_masks.py is found one folder up (the
    setup cell's sys.path), and the scorecard shows inline."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    exercises = tmp_path / "exercises"
    for module in ("ex01_attention", "ex02_masks"):
        exercises.mkdir(exist_ok=True)
        shutil.copy(SOLUTIONS / f"{module}.py", exercises / f"{module}.py")
    path = filled_notebook(registry.get(3), exercises / "notebooks" / "ex03_cross_attention.ipynb")
    nb = nbformat.read(path, as_version=4)
    # A test cell run before the code was right, then the real check.
    nb.cells.insert(3, nbformat.v4.new_code_cell("Attention(4)(torch.zeros(1, 2, 3), None, None)"))
    nb.cells[-1].source = "from grader import check\nreport = check(3, seed=7, max_examples=5)\nprint('TOTAL', report.total)"
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    outputs = nb.cells[-1].outputs
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert not [o for o in outputs if o.output_type == "error"], text
    assert "TOTAL 10.0" in text, text
    assert "10/10" in text and "Cross-attention" in text


def test_check_stages_the_imported_exercises(tmp_path):
    """ex03 imports ex02_masks: taken from a file nearby, else built from the
    kernel's own cells (one notebook for several exercises, or Colab)."""
    from grader.notebook import stage

    ex02 = (SOLUTIONS / "ex02_masks.py").read_text()
    ex03 = (SOLUTIONS / "ex03_cross_attention.py").read_text()
    history = [(1, ex02), (2, ex03)]
    built = module_from_history(history, "ex03_cross_attention")
    nowhere = tmp_path / "empty"
    nowhere.mkdir()
    notes = stage(built, "ex03_cross_attention", tmp_path / "a", [nowhere], history)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["ex02_masks.py", "ex03_cross_attention.py"]
    assert "ex02_masks was built from this kernel's cells (In [1]" in notes[0]
    built02 = (tmp_path / "a" / "ex02_masks.py").read_text()
    assert "def masked_attention" in built02 and "from ex02_masks" not in built02   # no self-import

    near = tmp_path / "near"
    near.mkdir()
    shutil.copy(SOLUTIONS / "ex02_masks.py", near / "ex02_masks.py")
    assert stage(built, "ex03_cross_attention", tmp_path / "b", [near], history) == []
    assert (tmp_path / "b" / "ex02_masks.py").read_text() == ex02

    notes = stage(built, "ex03_cross_attention", tmp_path / "c", [nowhere], [(2, ex03)])
    assert "no ex02_masks.py or ex02_masks.ipynb was found" in notes[0]


def test_check_locations_read_as_kernel_cells():
    from grader.notebook import Assembled, _relabel
    from grader.results import ExerciseResult, Report, TestResult

    built = Assembled("", [5], [(3, 5, 1)])
    test = TestResult("t", Status.FORBIDDEN, 0.0, 1.0,
                      message="uses torch.nn.MultiheadAttention "
                              "(/tmp/attn-grade-check-1/submission/ex03_cross_attention.py, line 4)",
                      traceback='  File "ex03_cross_attention.py", line 6, in forward\n    x = 1')
    report = Report("s", 1, [ExerciseResult(3, "c", "c", Status.FORBIDDEN, 0.0, 10.0, [test])])
    _relabel(report, built, "ex03_cross_attention")
    assert test.message == "uses torch.nn.MultiheadAttention (In [5], line 2)"
    assert test.traceback.splitlines()[0] == "  In [5], line 4, in forward"
