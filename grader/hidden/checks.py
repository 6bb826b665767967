"""Assertion helpers for the hidden tests.

Each raises `PropertyFailure` with a message a student can act on: what was
checked, the shapes, the largest difference and where it is, the values there,
and (when a usual mistake matches) a hint.
"""

from __future__ import annotations

from typing import Callable

import torch

from grader import counterexample, hints
from grader.outcomes import PropertyFailure

# Tolerances for comparing with a float64 oracle, by the submission's dtype.
TOLERANCES = {
    torch.float64: (1e-9, 1e-7),   # (atol, rtol)
    torch.float32: (2e-5, 1e-4),
    torch.bfloat16: (2e-2, 2e-2),
    torch.float16: (2e-3, 2e-3),
}


def tolerance(dtype: torch.dtype) -> tuple[float, float]:
    return TOLERANCES.get(dtype, TOLERANCES[torch.float32])


def fail(message: str, *, hint: str = "", max_error: float | None = None, shown=None):
    """Raise the failure.  `shown`: (actual, expected, what, atol, rtol, exact)
    of a failed comparison, kept as the failure's counterexample and repro."""
    example, repro = counterexample.capture(*shown[:3], atol=shown[3], rtol=shown[4],
                                            exact=shown[5]) if shown else (None, "")
    raise PropertyFailure(message, hint=hint, max_error=max_error, counterexample=example, repro=repro)


def require_tensor(value, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        fail(f"{what}: expected a tensor, got {type(value).__name__}",
             hint="Check what your function returns against the contract.")
    return value


def require_pair(value, what: str) -> tuple:
    if not isinstance(value, tuple) or len(value) != 2:
        got = f"a {type(value).__name__}" + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else "")
        fail(f"{what} must return a tuple (output, weights); it returned {got}",
             hint="Return both: `return output, weights`.")
    return value


def assert_shape(value, shape, what: str) -> None:
    value = require_tensor(value, what)
    if tuple(value.shape) != tuple(shape):
        fail(f"{what}: shape {tuple(value.shape)}, expected {tuple(shape)}",
             hint="Check which dimensions you multiply and reduce over.")


def assert_dtype(value, dtype: torch.dtype, what: str) -> None:
    value = require_tensor(value, what)
    if value.dtype != dtype:
        fail(f"{what}: dtype {value.dtype}, expected {dtype} (the input's dtype)",
             hint="Do not hard-code float32 (torch.tensor(...), torch.ones(...) without dtype=): "
                  "build new tensors with the input's dtype and device.")


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _candidates(candidates) -> dict:
    """Candidates may be a dict or a function making one (computed on failure only)."""
    if candidates is None:
        return {}
    return candidates() if callable(candidates) else candidates


def assert_close(actual, expected: torch.Tensor, what: str, *, atol: float | None = None,
                 rtol: float | None = None, candidates=None, hint: str = "") -> None:
    """`actual` equals the oracle's `expected` (computed in float64).

    `candidates`: {mistake: what that mistake would return}, or a function
    returning it; on failure the matching mistake becomes the hint."""
    actual = require_tensor(actual, what)
    d_atol, d_rtol = tolerance(actual.dtype)
    atol = d_atol if atol is None else atol
    rtol = d_rtol if rtol is None else rtol
    shown = (actual, expected, what, atol, rtol, False)
    if tuple(actual.shape) != tuple(expected.shape):
        fail(f"{what}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}",
             hint=hint or hints.diagnose(actual, _candidates(candidates)) or
             "Check which dimensions you multiply and reduce over.", shown=shown)
    a = actual.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    if a.numel() == 0:
        return
    bad_nan = torch.isnan(a) & ~torch.isnan(e)
    if bad_nan.any():
        index = tuple(int(i) for i in bad_nan.nonzero()[0])
        fail(f"{what}: NaN at index {index} (expected {_fmt(e[index].item())})",
             hint=hint or "A NaN usually means a whole row was masked with -inf, or "
                          "0 * inf; check where you fill the mask.", shown=shown)
    diff = (a - e).abs()
    diff = torch.where(torch.isnan(diff), torch.zeros_like(diff), diff)
    allowed = atol + rtol * e.abs()
    if bool((diff <= allowed).all()):
        return
    worst = int(torch.argmax(diff - allowed))
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), a.shape))
    max_error = float(diff.max())
    found = hint or hints.diagnose(actual, _candidates(candidates), atol=max(atol, 1e-6), rtol=max(rtol, 1e-5))
    fail(f"{what} differs from the reference: max abs error {_fmt(max_error)} "
         f"(allowed {atol:g} + {rtol:g}·|expected|); at index {index} got "
         f"{_fmt(a[index].item())}, expected {_fmt(e[index].item())}; shape {tuple(a.shape)}, "
         f"dtype {actual.dtype}",
         hint=found, max_error=max_error, shown=shown)


def assert_equal(actual, expected: torch.Tensor, what: str, *, hint: str = "") -> None:
    """Exact equality (masks, integer outputs)."""
    actual = require_tensor(actual, what)
    shown = (actual, expected, what, 0.0, 0.0, True)
    if tuple(actual.shape) != tuple(expected.shape):
        fail(f"{what}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}", hint=hint, shown=shown)
    if actual.dtype != expected.dtype:
        fail(f"{what}: dtype {actual.dtype}, expected {expected.dtype}", hint=hint, shown=shown)
    a, e = actual.to("cpu"), expected.to("cpu")
    if not torch.equal(a, e):
        wrong = (a != e).nonzero()
        index = tuple(int(i) for i in wrong[0])
        fail(f"{what}: {len(wrong)} of {a.numel()} entries differ; first at index {index}: "
             f"got {a[index].item()}, expected {e[index].item()}\n"
             f"got:\n{_small(a)}\nexpected:\n{_small(e)}", hint=hint, shown=shown)


def _small(t: torch.Tensor) -> str:
    if t.numel() > 64:
        return f"<tensor of shape {tuple(t.shape)}>"
    return str(t.to(torch.int8) if t.dtype == torch.bool else t)


def assert_true(condition: bool, message: str, *, hint: str = "") -> None:
    if not condition:
        fail(message, hint=hint)


def check_property(holds: Callable[[], bool], message: str, *, hint: str = "") -> None:
    assert_true(bool(holds()), message, hint=hint)
