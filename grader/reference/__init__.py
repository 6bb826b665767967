"""The grader's own earlier exercises, provided to later ones.

Each exercise is graded in isolation (issue "one bug, one penalty"): the
student's file for exercise N runs with every earlier exercise it imports
provided by these modules, under the contract's module names.  They are
thin wrappers over the very built-ins the exercises teach
(`F.scaled_dot_product_attention`, `F.multi_head_attention_forward`,
`nn.TransformerEncoderLayer`, ...), so none of them could be handed in as a
student's own work: the forbidden-built-in rule rejects them in a student
file, and a student file may not import `grader` at all.

They follow the contract exactly: names, attributes (`W_q`, `self_attn`,
`feed_forward.linear1`, `positional`...) and state-dict names, and its mask
convention (True = NOT allowed, the opposite of
`F.scaled_dot_product_attention`'s boolean mask).

In the worker they are staged as one-line modules (`shim_source`) that
re-export the contract's names; the tripwires let calls made by these
modules' own code through (sandbox/guards.py, TRUSTED_MODULES).
"""

from __future__ import annotations

import functools

from grader import registry

PACKAGE = __name__

# The exercises the grader provides, by contract module name.  Exercise 3
# is imported by no later exercise; exercise 8 is the last one.
PROVIDED: tuple[str, ...] = (
    "ex01_attention",
    "ex02_masks",
    "ex04_multi_head",
    "ex05_positional_encoding",
    "ex06_blocks",
    "ex07_transformer",
)

# Every module of this package whose own code may call the forbidden built-ins.
TRUSTED_MODULES: tuple[str, ...] = PROVIDED + ("_attend", "_layers")


_REBUILDABLE = (RuntimeError, ValueError, TypeError, IndexError, AssertionError)


def explained(what: str):
    """Decorate a reference entry point: an error it raises says that it was
    raised in the grader's code, so the arguments the student's file passed
    are what to look at (the student's calling line is the traceback's last)."""
    def decorate(func):
        @functools.wraps(func)
        def call(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except _REBUILDABLE as exc:
                if type(exc) not in _REBUILDABLE:
                    raise
                raise type(exc)(
                    f"{exc}\n(raised inside the grader's {what}, which your code calls here: look "
                    "at the arguments your code passes to it — which tensors, which masks, their "
                    "shapes; the exercise contract gives them)") from None
        return call
    return decorate


def shim_source(module: str) -> str:
    """The staged stand-in for the student's `module`.py: the contract's
    names, re-exported from the grader's reference."""
    exercise = registry.by_module(module)
    return (f'"""Exercise {exercise.number} ({exercise.slug}), provided by attn-grade: the grader '
            f'grades each exercise\non its own reference of the exercises it imports."""\n'
            f"from {PACKAGE}.{module} import *  # noqa: F401,F403\n")


def depends_on(exercise: registry.Exercise, imports: "set[str] | tuple" = ()) -> list[registry.Exercise]:
    """The exercises `exercise` builds on, directly or not (registry.depends_on),
    and the earlier ones among `imports` (the exercise modules the student's
    file imports, when it uses more than the registry says)."""
    seen: dict[int, registry.Exercise] = {}
    earlier = (registry.by_module(m) for m in imports)
    todo = [*exercise.depends_on,
            *(e.number for e in earlier if e is not None and e.number < exercise.number)]
    while todo:
        number = todo.pop()
        if number not in seen:
            seen[number] = registry.get(number)
            todo.extend(seen[number].depends_on)
    return [seen[n] for n in sorted(seen)]


def provided_for(exercise: registry.Exercise, imports: "set[str] | tuple" = ()) -> dict[str, str]:
    """{module: staged source} of the grader's modules that stand in for the
    student's files when `exercise` is graded in isolation: the earlier
    exercises it builds on, and only those (a later exercise's reference
    would hand the student's file the very thing it must write)."""
    return {dep.module: shim_source(dep.module) for dep in depends_on(exercise, imports)
            if dep.module in PROVIDED}
