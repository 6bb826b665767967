"""Duplicate and similarity flags: what they catch and what they leave alone."""

from __future__ import annotations

import re

from grader.batch.flags import SOLUTION, find_flags, fingerprint, similarity, statement_lines
from tests.conftest import EXERCISES, FIXTURES, SOLUTIONS

STUB = (EXERCISES / "ex01_attention.py").read_text()
SOLVED = (SOLUTIONS / "ex01_attention.py").read_text()
EINSUM = (FIXTURES / "ex01" / "correct_einsum.py").read_text()
LOOPS = (FIXTURES / "ex01" / "correct_loops.py").read_text()


def restyled(text: str) -> str:
    """The same code with other comments, blank lines and docstrings."""
    text = re.sub(r'"""[\s\S]*?"""', '"""my own words"""', text)
    text = re.sub(r"#.*", "# mine", text)
    return text.replace("\n\n", "\n\n\n")


def renamed(text: str) -> str:
    """Every local name the student chose, renamed."""
    for old, new in (("scores", "s_mat"), ("weights", "attn_w"), ("d_k", "dim"), ("output", "res")):
        text = re.sub(rf"\b{old}\b", new, text)
    return text


def flags_of(codes, **kw) -> set[tuple[str, str, str]]:
    return {(f.student, f.other, f.kind.value) for f in find_flags(codes, stubs={1: STUB}, **kw)}


def test_identical_after_comments_whitespace_and_docstrings():
    assert statement_lines(restyled(EINSUM)) == statement_lines(EINSUM)
    found = flags_of({"ann": {1: EINSUM}, "ben": {1: restyled(EINSUM)}})
    assert found == {("ann", "ben", "identical"), ("ben", "ann", "identical")}


def test_renamed_identifiers_are_similar_not_identical():
    a, b = fingerprint(EINSUM, STUB), fingerprint(renamed(EINSUM), STUB)
    assert a.lines != b.lines and similarity(a, b) > 0.95
    assert flags_of({"ann": {1: EINSUM}, "ben": {1: renamed(EINSUM)}}) == {
        ("ann", "ben", "similar"), ("ben", "ann", "similar")}


def test_independent_correct_styles_are_not_flagged():
    assert flags_of({"ann": {1: EINSUM}, "ben": {1: LOOPS}}) == set()


def test_untouched_stubs_never_pair_up():
    assert fingerprint(STUB, STUB).empty
    assert flags_of({"ann": {1: STUB}, "ben": {1: STUB}, "cat": {1: restyled(STUB)}}) == set()


def test_code_identical_to_the_solution_is_flagged():
    found = flags_of({"ann": {1: restyled(SOLVED)}, "ben": {1: LOOPS}}, solutions={1: SOLVED})
    assert found == {("ann", SOLUTION, "identical")}


def test_unparsable_code_is_left_alone():
    assert flags_of({"ann": {1: "def f(:\n"}, "ben": {1: "def f(:\n"}}) == set()
