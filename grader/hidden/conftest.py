"""Fixtures of the hidden tests.

`student` is the submission's module for the exercise under test, as a proxy:
every call runs in the sandboxed worker and comes back as plain tensors.
The judge never imports the submission.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

from grader.hidden.strategies import GRADING, grading_settings
from grader.outcomes import AbortedInSetup, StudentAbort
from grader.runner import CONTEXT_PLUGIN

DEFAULT_EXAMPLES = GRADING.max_examples

settings.register_profile("attn-grade", GRADING)
settings.load_profile("attn-grade")


def pytest_collection_modifyitems(config, items):
    """Give every property the settings of this run: its own `@S.examples(n)`
    (default DEFAULT_EXAMPLES), unless --max-examples overrides it.  Done
    here, at each run's collection, because `@given` freezes its settings
    when a module is first imported, and modules are imported once per process."""
    context = config.pluginmanager.get_plugin(CONTEXT_PLUGIN)
    override = context.options.max_examples if context is not None else None
    for item in items:
        test = getattr(item, "obj", None)
        if not getattr(test, "is_hypothesis_test", False):
            continue
        inner = getattr(getattr(test, "hypothesis", None), "inner_test", None)
        n, shrink = (getattr(test, "_attn_grade_examples", None)
                     or getattr(inner, "_attn_grade_examples", None)
                     or (DEFAULT_EXAMPLES, True))
        test._hypothesis_internal_use_settings = grading_settings(override or n, shrink=shrink)


@pytest.fixture(scope="session")
def ctx(request):
    """The grading context: exercise, options, seed, worker."""
    context = request.config.pluginmanager.get_plugin(CONTEXT_PLUGIN)
    if context is None:  # pragma: no cover - only when run outside the runner
        pytest.exit("hidden tests run through attn-grade only", returncode=3)
    return context


@pytest.fixture
def student(ctx):
    """The submission's module of this exercise, reset before each test."""
    try:
        return ctx.student()
    except StudentAbort as abort:
        raise AbortedInSetup(abort) from None


@pytest.fixture
def device(ctx):
    """Where the tests put their tensors ("cpu" in CI, "cuda" on a GPU)."""
    import torch

    return torch.device(ctx.device)
