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
modules' own code through (trust.py).
"""

from __future__ import annotations

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

DEPENDENCY_MODES = ("reference", "own")


def shim_source(module: str) -> str:
    """The staged stand-in for the student's `module`.py: the contract's
    names, re-exported from the grader's reference."""
    exercise = registry.by_module(module)
    return (f'"""Exercise {exercise.number} ({exercise.slug}), provided by attn-grade: the grader '
            f'grades each exercise\non its own reference of the exercises it imports."""\n'
            f"from {PACKAGE}.{module} import *  # noqa: F401,F403\n")


def provided_for(exercise: registry.Exercise) -> dict[str, str]:
    """{module: staged source} of the grader's modules that stand in for the
    student's other exercise files when `exercise` is graded in isolation:
    every provided exercise but the one under test."""
    return {module: shim_source(module) for module in PROVIDED if module != exercise.module}
