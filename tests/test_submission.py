"""Reading submissions without running them: files, notebooks, static checks."""

from __future__ import annotations

import json
from pathlib import Path

from grader import registry
from grader.runner import precheck
from grader.submission import Submission, notebook_source
from tests.conftest import REPO

FORBIDDEN = registry.get(1).forbidden


def make(tmp_path: Path, files: dict[str, str]) -> Submission:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return Submission.from_path(tmp_path)


def test_forbidden_calls_are_found_in_the_source(tmp_path):
    cases = {
        "F.scaled_dot_product_attention(q, k, v)": "scaled_dot_product_attention",
        "torch.nn.functional.scaled_dot_product_attention(q, k, v)": "scaled_dot_product_attention",
        "nn.MultiheadAttention(4, 2)": "MultiheadAttention",
        "getattr(F, 'scaled_dot_product_attention')": "scaled_dot_product_attention",
        "torch.nn.TransformerEncoderLayer(4, 2)": "TransformerEncoderLayer",
    }
    for code, name in cases.items():
        sub = make(tmp_path, {"ex01_attention.py": f"import torch\nimport torch.nn as nn\n"
                                                   f"import torch.nn.functional as F\ndef f(q, k, v):\n"
                                                   f"    return {code}\n"})
        hits = sub.forbidden_uses("ex01_attention", FORBIDDEN)
        assert hits and name in hits[0], (code, hits)
    sub = make(tmp_path, {"ex01_attention.py":
                          "from torch.nn.functional import scaled_dot_product_attention as f\n"})
    assert sub.forbidden_uses("ex01_attention", FORBIDDEN)


def test_own_functions_and_self_checks_are_not_forbidden(tmp_path):
    """The student's own `scaled_dot_product_attention`, an earlier exercise's
    module attribute, and a comparison inside `if __name__ == "__main__":` are fine."""
    sub = make(tmp_path, {
        "ex01_attention.py": (
            "import torch.nn.functional as F\n"
            "def scaled_dot_product_attention(q, k, v):\n    return q, k\n"
            "def g(q):\n    return scaled_dot_product_attention(q, q, q)\n"
            "if __name__ == '__main__':\n    F.scaled_dot_product_attention\n"),
        "ex02_masks.py": "import ex01_attention\ndef h(q):\n"
                         "    return ex01_attention.scaled_dot_product_attention(q, q, q)\n",
    })
    assert sub.forbidden_uses("ex01_attention", FORBIDDEN) == []
    assert sub.forbidden_uses("ex02_masks", FORBIDDEN) == []


def test_scoped_forbidden_names_only_count_inside_their_function(tmp_path):
    ex8 = registry.get(8)
    sub = make(tmp_path, {"ex08_training.py": (
        "import torch.nn.functional as F\n"
        "def label_smoothed_cross_entropy(logits, target, eps=0.1, ignore_index=-100):\n"
        "    return F.cross_entropy(logits, target)\n"
        "def train_step(*a):\n    return F.cross_entropy(*a)\n")})
    hits = sub.forbidden_uses("ex08_training", ex8.forbidden, ex8.forbidden_scope)
    assert len(hits) == 1 and "line 3" in hits[0]


def test_precheck_explains_missing_files_and_syntax_errors(tmp_path):
    sub = make(tmp_path, {"ex01_attention.py": "def f(:\n    pass\n"})
    problem = precheck(sub, registry.get(1))
    assert problem is not None and problem.status.value == "error"
    assert "syntax error" in problem.message and "line 1" in problem.message
    missing = precheck(sub, registry.get(2))
    assert missing.status.value == "not_implemented" and "ex02_masks.py" in missing.message


def test_files_that_would_shadow_libraries_are_not_staged(tmp_path):
    sub = make(tmp_path, {"torch.py": "raise SystemExit", "random.py": "x = 1",
                          "ex01_attention.py": "x = 1", "helpers.py": "y = 2"})
    assert set(sub.files) == {"ex01_attention", "helpers"}


def test_notebook_cells_become_a_module(tmp_path):
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# Title"},
        {"cell_type": "code", "metadata": {}, "source": ["!pip install torch\n", "import torch\n"],
         "outputs": [], "execution_count": 1},
        {"cell_type": "code", "metadata": {"tags": ["skip"]}, "source": "raise SystemExit",
         "outputs": [], "execution_count": 2},
        {"cell_type": "code", "metadata": {}, "source": "%time x = 1\ny = 2\nz = (", "outputs": [],
         "execution_count": 3},
    ]}
    path = tmp_path / "ex01_attention.ipynb"
    path.write_text(json.dumps(nb))
    source = notebook_source(path)
    assert "import torch" in source.text and "pip" not in source.text
    assert "SystemExit" not in source.text and "%time" not in source.text
    sub = Submission.from_path(path)
    problem = sub.syntax_error("ex01_attention")
    assert problem is not None and "cell 4" in problem


def test_a_corrupt_notebook_costs_only_its_exercise(tmp_path):
    (tmp_path / "ex01_attention.ipynb").write_text("{not json")
    (tmp_path / "ex02_masks.py").write_text("x = 1\n")
    sub = Submission.from_path(tmp_path)
    assert sub.syntax_error("ex01_attention") and "not a readable notebook" in sub.syntax_error("ex01_attention")
    assert sub.syntax_error("ex02_masks") is None


REFLECTION = {
    # flagged: routes around the grader's checks
    "import torch.nn as nn\ndef f(name):\n    return getattr(nn, name)\n": True,
    "import torch.nn.functional as F\nf = vars(F)['scaled_dot_' + 'product_attention']\n": True,
    "import torch\nops = torch.ops\nf = getattr(ops, 'at' + 'en')\n": True,
    "import torch\nf = torch._C._nn\n": True,
    "def f(m):\n    return m.__closure__[0].cell_contents\n": True,
    "def f(c):\n    return getattr(c, '__ba' + 'ses__')[0]\n": True,
    "def f(c):\n    return c.__wrapped__\n": True,
    "def f(c):\n    return c.__globals__\n": True,
    "def f():\n    return object.__subclasses__()\n": True,
    "import gc\nobjs = gc.get_objects()\n": True,
    "import gc\nobjs = getattr(gc, 'get_' + 'objects')()\n": True,
    "import ctypes\n": True,
    "import sys\nm = sys.modules['torch']\n": True,
    "import sys\nframe = sys._getframe(1)\n": True,
    "import importlib\nm = importlib.import_module('torch')\n": True,
    "import importlib.util\n": True,
    "import grader\n": True,
    "from grader.sandbox import guards\n": True,
    "m = __import__(''.join(['o', 's']))\n": True,
    "x = eval('1 + 1')\n": True,
    "import operator\nimport torch.nn.functional as F\n"
    "g = operator.attrgetter('__glob' + 'als__')(F.softmax)\n": True,
    "import operator\ng = operator.attrgetter(''.join(['__clo', 'sure__']))\n": True,
    "import torch\nop = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu\n": True,
    "def f(e):\n    return e.__traceback__.tb_frame.f_back.f_globals\n": True,
    # not flagged: what students write
    "import gc\nimport torch\ngc.collect()\n": False,
    "import importlib\nimport ex01_attention\nimportlib.reload(ex01_attention)\n": False,
    "from grader import check\ncheck(1)\n": False,
    "import sys\nsys.path.append('..')\n": False,
    "import torch.nn as nn\nact = getattr(nn, 'ReLU')()\n": False,
    "import copy, math, functools, typing\nimport torch\nimport torch.nn as nn\n"
    "lo = torch.finfo(torch.float32).min\nlayers = nn.ModuleList(copy.deepcopy(nn.Linear(2, 2)) for _ in range(2))\n": False,
    "class A:\n    def __repr__(self):\n        return self.__class__.__name__\n": False,
    "def f(self, i):\n    return getattr(self, f'head_{i}')\n": False,
    "if __name__ == '__main__':\n    import gc\n    print(len(gc.get_objects()))\n": False,
}


def test_reflective_routes_are_found_and_course_code_is_not_flagged(tmp_path):
    wrong = {}
    for number, (code, flagged) in enumerate(REFLECTION.items()):
        folder = tmp_path / str(number)
        folder.mkdir()
        found = make(folder, {"ex01_attention.py": code}).reflective_uses("ex01_attention")
        if bool(found) != flagged:
            wrong[code] = found
    assert not wrong


def test_no_solution_stub_or_fixture_uses_reflection():
    repo = REPO
    folders = [repo / "solutions", repo / "exercises", repo / "exercises" / "notebooks",
               *sorted((repo / "tests" / "fixtures").glob("ex0*/correct_*")),
               *sorted((repo / "tests" / "fixtures").glob("ex0*/wrong_*")),
               *sorted((repo / "tests" / "fixtures" / "notebooks").glob("*.ipynb"))]
    flagged = {}
    for folder in folders:
        submission = Submission.from_path(folder)
        for module in submission.files:
            found = submission.reflective_uses(module)
            if found:
                flagged[f"{folder.name}/{module}"] = found
    assert not flagged


def test_helper_files_a_submission_imports_are_scanned_too(tmp_path):
    sub = make(tmp_path, {"ex01_attention.py": "import helpers\n",
                          "helpers.py": "import torch.nn.functional as F\n"
                                        "f = getattr(F, 'scaled_dot_' + 'product_attention')\n"})
    problem = precheck(sub, registry.get(1))
    assert problem is not None and problem.status.value == "forbidden"
    assert "scaled_dot_product_attention" in problem.message and "instructor" in problem.message
