"""Fixtures of the hidden tests.

`student` is the submission's module for the exercise under test, as a proxy:
every call runs in the sandboxed worker and comes back as plain tensors.
The judge never imports the submission.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

from grader.outcomes import AbortedInSetup, StudentAbort
from grader.runner import CONTEXT_PLUGIN

from grader.hidden.strategies import GRADING

DEFAULT_EXAMPLES = GRADING.max_examples

settings.register_profile("attn-grade", GRADING)
settings.load_profile("attn-grade")


@pytest.fixture(scope="session")
def ctx(request):
    """The grading context: exercise, options, seed, worker."""
    context = request.config.pluginmanager.get_plugin(CONTEXT_PLUGIN)
    if context is None:  # pragma: no cover - only when run outside the runner
        pytest.exit("hidden tests run through attn-grade only", returncode=3)
    examples = context.options.max_examples
    settings.register_profile("attn-grade-run", parent=settings.get_profile("attn-grade"),
                              max_examples=examples or DEFAULT_EXAMPLES)
    settings.load_profile("attn-grade-run")
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
