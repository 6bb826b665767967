"""A small class folder, shared by the batch tests that grade for real."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import EXERCISES, FIXTURES, SOLUTIONS

STUDENTS = ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank"]
HANG = ("import torch\n\ndef scaled_dot_product_attention(q, k, v):\n    while True:\n        pass\n\n"
        "class SelfAttention(torch.nn.Module):\n    def __init__(self, d_model):\n"
        "        while True:\n            pass\n")


def make_class(root: Path) -> Path:
    """alice correct, bob the stubs, carol wrong, dave kills its worker, erin
    hangs, frank empty, gina a notebook straight in the class folder, hank a
    corrupt notebook; __MACOSX and dot-folders are not students."""
    subs = root / "submissions"
    subs.mkdir(parents=True)
    for name in ("alice", "bob", "carol", "dave", "erin", "frank", "hank", "__MACOSX", ".ipynb_checkpoints"):
        (subs / name).mkdir()
    for py in SOLUTIONS.glob("*.py"):
        shutil.copy(py, subs / "alice" / py.name)
    for py in EXERCISES.glob("*.py"):
        shutil.copy(py, subs / "bob" / py.name)
    shutil.copy(FIXTURES / "ex01" / "wrong_no_scale.py", subs / "carol" / "ex01_attention.py")
    (subs / "dave" / "ex01_attention.py").write_text("import os\nos._exit(3)\n")
    (subs / "erin" / "ex01_attention.py").write_text(HANG)
    (subs / "hank" / "ex01_attention.ipynb").write_text('{"cells": [')
    shutil.copy(FIXTURES / "notebooks" / "jupyter_ex01_attention.ipynb", subs / "gina.ipynb")
    (subs / "__MACOSX" / "ex01_attention.py").write_text("raise SystemExit\n")
    return subs
