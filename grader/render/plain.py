"""The one builder of a test's text in plain-text formats (JUnit, Gradescope,
GitHub annotations): what failed, on which input, by how much, and the hint,
always in the same order and words.  Student text is made inert here."""

from __future__ import annotations

from grader.render import tensors
from grader.render.sanitize import clean
from grader.results import Status, TestResult


def example_label(test: TestResult) -> str:
    """What the example is: hypothesis's shrunk case, or one of the fixed
    first cases every run tries (not shrunk, so not "smallest")."""
    return "failing input" if "explicit example" in test.example else "smallest failing input"


def failure_parts(test: TestResult, *, compact: bool = False) -> list[str]:
    """The parts of a test's text.  `compact` (one annotation): the status
    with the message, and the hint."""
    if compact:
        parts = [f"{test.status.value}: {test.message.strip() or test.status.value}"]
        return [clean(p) for p in parts + ([f"hint: {test.hint}"] if test.hint else [])]
    parts = []
    if test.description:
        parts.append(f"property: {test.description}")
    if test.message and test.status is not Status.PASSED:
        parts.append(test.message)
    if test.example:
        parts.append(f"{example_label(test)}:\n" + test.example)
    if test.counterexample:
        parts.append("\n".join(tensors.text_lines(test.counterexample)))
    if test.traceback:
        parts.append("traceback (your code):\n" + test.traceback)
    if test.hint:
        parts.append(f"hint: {test.hint}")
    return [clean(p) for p in parts]


def failure_text(test: TestResult, *, separator: str = "\n", compact: bool = False,
                 limit: int | None = None) -> str:
    text = separator.join(failure_parts(test, compact=compact))
    return text if limit is None or len(text) <= limit else text[:limit] + "…"
