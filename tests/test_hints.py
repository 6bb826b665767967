"""hints.py: one text per mistake, and claims only when they are true."""

from __future__ import annotations

from collections import Counter

import torch

from grader import hints


def test_every_text_is_given_once():
    repeated = [text for text, n in Counter(hints.MISTAKES.values()).items() if n > 1]
    assert repeated == []
    for variant, key in hints.SAME_MISTAKE.items():
        assert variant not in hints.MISTAKES and key in hints.MISTAKES
        assert hints.hint(variant) == hints.hint(key)


def test_a_candidate_equal_to_the_reference_is_never_claimed():
    expected = torch.tensor([[0.2, 0.8], [0.5, 0.5]], dtype=torch.float64)
    actual = expected + 1e-3
    # "mask after softmax" equals the reference on this input (nothing masked): it proves nothing.
    found = hints.diagnose(actual, {"mask_after_softmax": expected.clone()}, atol=1e-2, expected=expected)
    assert found == ""


def test_the_matching_candidate_is_named():
    expected = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    found = hints.diagnose(expected * 2, {"no_scale": expected * 2, "scale_by_dk": expected / 2},
                           expected=expected)
    assert found == hints.hint("no_scale")


def test_two_bugs_at_once_name_the_closest_candidates_not_one_of_them():
    expected = torch.zeros(8, dtype=torch.float64)
    bug_a = torch.tensor([1.0, 0, 0, 0, 0, 0, 0, 0], dtype=torch.float64)
    bug_b = torch.tensor([0, 0, 0, 0, 0, 0, 0, 1.0], dtype=torch.float64)
    far = torch.full((8,), 5.0, dtype=torch.float64)
    both = bug_a + bug_b
    found = hints.diagnose(both, {"heads_strided": far, "mask_inverted": bug_a, "no_scale": bug_b},
                           expected=expected)
    assert found.startswith(hints.SEVERAL_DIFFER)
    assert hints.hint("mask_inverted") in found and hints.hint("no_scale") in found
    assert hints.hint("heads_strided") not in found
