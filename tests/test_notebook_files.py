"""grader/notebook_files.py: notebooks read and written through nbformat."""

from __future__ import annotations

import json

import nbformat
import pytest

from grader import notebook_files
from grader.notebook_files import NotebookError, code_lines, notebook_module, read_notebook

CELLS = [
    "%matplotlib inline\nimport torch",
    "!pip install einops\nx = 1  # a line that stays\n  %time y = 2",
    "%%bash\necho not python",
    "%%time\nz = 3",
    "torch.zeros?\nw = 4",
    "a = 1 != 2\nb = '!not a shell line'",
]


def _notebook(tmp_path, cells, **extra):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells], **extra)
    path = tmp_path / "ex01_attention.ipynb"
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    return path


@pytest.mark.parametrize("ipython", [True, False], ids=["ipython", "fallback"])
def test_shell_and_magic_lines_are_left_out_keeping_line_numbers(monkeypatch, ipython):
    if not ipython:
        monkeypatch.setattr(notebook_files, "_ipython_shell_lines", lambda lines: None)
    assert code_lines(CELLS[0]) == ["", "import torch"]
    assert code_lines(CELLS[1]) == ["", "x = 1  # a line that stays", ""]
    assert code_lines(CELLS[2]) is None                   # another language: the whole cell
    assert code_lines(CELLS[3]) == ["", "z = 3"]          # %%time: its body is Python
    assert code_lines(CELLS[4]) == ["", "w = 4"]
    assert code_lines(CELLS[5]) == CELLS[5].splitlines()  # `!=` and strings are code


def test_a_notebook_becomes_one_module(tmp_path):
    path = _notebook(tmp_path, ["import torch", "def f():\n    return 1"])
    nb = read_notebook(path)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("# title"))
    nb.cells.append(nbformat.v4.new_code_cell("check(1)", metadata={"tags": ["skip"]}))
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    module = notebook_module(path)
    assert module.text.splitlines()[:4] == ["import torch", "", "def f():", "    return 1"]
    assert module.cells == [(1, 2), (3, 3)] and module.code_cells == 3   # cell 1 is markdown
    assert "check(1)" not in module.text


def test_nbformat_3_is_upgraded(tmp_path):
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": ""}, "worksheets": [{"cells": [
        {"cell_type": "code", "input": "x = 1", "language": "python", "outputs": [],
         "metadata": {}}], "metadata": {}}]}
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(v3))
    assert notebook_module(path).text.strip() == "x = 1"


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b'{"cells": [', "JSON is broken at line 1"),
    (b"[1, 2]", "not an object"),
    (b'{"metadata": {}}', "no list of cells"),
    (json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "source": 12, "metadata": {}, "outputs": [],
         "execution_count": None, "id": "a"}]}).encode(), "cell 1"),
])
def test_unusable_notebooks_say_why_in_one_line(tmp_path, content, message):
    path = tmp_path / "ex02_masks.ipynb"
    path.write_bytes(content)
    with pytest.raises(NotebookError) as caught:
        read_notebook(path)
    assert message in caught.value.message and "\n" not in caught.value.message


def test_written_notebooks_validate_and_are_stable():
    cells = [notebook_files.markdown_cell("# hi", cell_id="a-md"),
             notebook_files.code_cell("x = 1", cell_id="b-code", tags=("skip",))]
    nb = notebook_files.new_notebook(cells, {"kernelspec": {"name": "python3",
                                                            "display_name": "Python 3"}})
    text = notebook_files.dumps(nb)
    assert text == notebook_files.dumps(nbformat.reads(text, as_version=4))
    assert json.loads(text)["cells"][1]["metadata"] == {"tags": ["skip"]}


def test_the_cells_that_grade_the_notebook_are_left_out(tmp_path):
    path = _notebook(tmp_path, ["import torch\nfrom grader.notebook import check\ncheck(1)\nx = 1",
                                "import grader\ngrader.check(1, seed=3)"])
    text = notebook_module(path).text
    assert "grader" not in text and "check(" not in text
    assert text.splitlines()[:4] == ["import torch", "", "", "x = 1"]   # line numbers kept
