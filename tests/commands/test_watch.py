"""`attn-grade watch`'s screen: the quick scorecard is marked as such and
the full one replaces it (the loop itself: tests/test_watch.py)."""

from __future__ import annotations

import io

from rich.console import Console

from grader import registry
from grader.commands.watch import _printer
from grader.watch import QUICK_EXAMPLES, WatchEvent
from tests.reports import fixed_report


def test_the_quick_scorecard_says_so_and_the_full_one_says_it_is_watching():
    out = io.StringIO()
    show = _printer(Console(file=out, width=100), seed=5)
    ex = registry.get(1)
    show(WatchEvent(ex, fixed_report(), changed=("ex01_attention.py",), quick=True))
    quick = out.getvalue()
    assert quick.startswith(f"quick check ({QUICK_EXAMPLES} examples per property)")
    assert "quick check of exercise 1 (ex01_attention.py changed) · seed 5 · full check running" in quick
    assert "watching exercise" not in quick
    out.seek(0), out.truncate()
    show(WatchEvent(ex, fixed_report(), changed=("ex01_attention.py",)))
    assert "quick check" not in out.getvalue()
    assert "watching exercise 1 (ex01_attention.py changed) · seed 5" in out.getvalue()
