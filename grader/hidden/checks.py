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

# ------------------------------------------------------------------ precision policy
# docs/precision.md explains these numbers; this module is the only place
# that applies them.
#
# Tolerances for comparing with a float64 oracle, by the submission's dtype.
TOLERANCES = {
    torch.float64: (1e-9, 1e-7),   # (atol, rtol)
    torch.float32: (2e-5, 1e-4),
    torch.bfloat16: (2e-2, 2e-2),
    torch.float16: (2e-3, 2e-3),
}


# A float64 result may use a constant rounded to float32 (the course's
# `torch.tensor(d_k ** 0.5)`): its relative error is at most 2^-24, and
# 1 / fl32(sqrt(d_k)) or fl32(d_k ** -0.5) stays within 2^-23.  Twice that, for margin.
FLOAT32_CONSTANT_DRIFT = 2.0 ** -22

PRECISION_HINT = ("Right at float32 precision, not at float64: part of the computation runs in "
                  "float32 (a .float(), a torch.tensor(...) or torch.ones(...) without dtype=, "
                  "numpy's float32). A float32 constant such as the scale is accepted, but the "
                  "tensors must stay in the input's dtype: use math.sqrt(d_k) (a Python float) or "
                  "build new tensors with dtype=x.dtype, device=x.device.")


def tolerance(dtype: torch.dtype) -> tuple[float, float]:
    return TOLERANCES.get(dtype, TOLERANCES[torch.float32])


def _within(a: torch.Tensor, e: torch.Tensor, atol: float, rtol: float) -> bool:
    diff = (a - e).abs()
    diff = torch.where(torch.isnan(diff) & torch.isnan(e), torch.zeros_like(diff), diff)
    return bool((diff <= atol + rtol * e.abs()).all())


def explained_by_a_float32_scale(a: torch.Tensor, e: torch.Tensor, at_scale, atol: float,
                                 rtol: float) -> bool:
    """Is float64 `a` the float64 equation with the scale rounded to float32?

    `at_scale(f)` is the oracle with the scale multiplied by f.  The one
    factor f = 1 + delta (|delta| <= FLOAT32_CONSTANT_DRIFT) that best
    explains a - e to first order is found by least squares; `a` must then
    match the oracle at that factor within the float64 tolerance.  A float32
    computation's error is spread over every element and is not explained by
    one factor, so it stays rejected."""
    if at_scale is None or not torch.isfinite(a).all():
        return False
    h = 1e-6
    slope = (at_scale(1 + h).to(torch.float64) - at_scale(1 - h).to(torch.float64)) / (2 * h)
    norm = float((slope * slope).sum())
    if norm == 0.0:
        return False
    delta = float(((a - e) * slope).sum()) / norm
    delta = max(-FLOAT32_CONSTANT_DRIFT, min(FLOAT32_CONSTANT_DRIFT, delta))
    return _within(a, at_scale(1 + delta).detach().to("cpu", torch.float64), atol, rtol)


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
                  "build new tensors with the input's dtype and device, and convert stored tables "
                  "to it (table.to(x.dtype)): adding a float32 tensor to a bfloat16 or float16 x "
                  "gives float32.")


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _candidates(candidates) -> dict:
    """Candidates may be a dict or a function making one (computed on failure only)."""
    if candidates is None:
        return {}
    return candidates() if callable(candidates) else candidates


def index_of(flat: int, shape) -> tuple[int, ...]:
    """The multi-index of entry `flat` of a tensor of `shape`, in plain Python
    (torch.unravel_index imports sympy on first use: ~0.2 s of a regrade)."""
    index = []
    for size in reversed(tuple(shape)):
        flat, rest = divmod(flat, size) if size else (flat, 0)
        index.append(rest)
    return tuple(reversed(index))


def assert_close(actual, expected: torch.Tensor, what: str, *, atol: float | None = None,
                 rtol: float | None = None, candidates=None, hint: str = "",
                 at_scale=None) -> None:
    """`actual` equals the oracle's `expected` (computed in float64).

    `candidates`: {mistake: what that mistake would return}, or a function
    returning it; on failure the matching mistake becomes the hint.
    `at_scale`: f -> the oracle with its attention scale multiplied by f; given,
    a float64 answer that used a float32 scale is accepted (precision policy)."""
    actual = require_tensor(actual, what)
    d_atol, d_rtol = tolerance(actual.dtype)
    dtype_tolerance = atol is None and rtol is None     # the policy's own, not the test's
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
    precision_level = False
    if actual.dtype == torch.float64 and dtype_tolerance:
        if explained_by_a_float32_scale(a, e, at_scale, atol, rtol):
            return
        precision_level = _within(a, e, *TOLERANCES[torch.float32])
    index = index_of(int(torch.argmax(diff - allowed)), a.shape)
    max_error = float(diff.max())
    if precision_level:
        # A usual mistake that reproduces the answer at float64 precision, or
        # one the test diagnosed itself, still wins; any other hint would be
        # unrelated: at this level every guess looks alike.
        found = (hints.diagnose(actual, _candidates(candidates), atol=atol, rtol=rtol, expected=e,
                                near=False)
                 or (hint if hint in hints.MISTAKES.values() else "") or PRECISION_HINT)
    else:
        found = hint or hints.diagnose(actual, _candidates(candidates), atol=max(atol, 1e-6),
                                       rtol=max(rtol, 1e-5), expected=e)
    fail(f"{what} differs from the reference: max abs error {_fmt(max_error)} "
         f"(allowed {atol:g} + {rtol:g}·|expected|); at index {index} got "
         f"{_fmt(a[index].item())}, expected {_fmt(e[index].item())}; shape {tuple(a.shape)}, "
         f"dtype {actual.dtype}",
         hint=found, max_error=max_error, shown=shown)


def assert_large_logits_close(actual, expected: torch.Tensor, what: str, **kwargs) -> None:
    """`actual` is finite and equals `expected` (scores of size ~1e3).  Float32
    scores that large carry absolute errors ~1e-4, so float32 answers are
    compared at 100x the float32 tolerance; float64 at float64's."""
    actual = require_tensor(actual, what)
    if actual.is_floating_point() and not bool(torch.isfinite(actual).all()):
        bad = ~torch.isfinite(actual)
        index = tuple(int(i) for i in bad.nonzero()[0])
        fail(f"{what}: {actual[index].item()} at index {index} (the reference is finite: "
             f"{expected[index].item():.6g})", hint=hints.hint("softmax_overflow"))
    if actual.dtype == torch.float32:
        atol, rtol = TOLERANCES[torch.float32]
        kwargs.setdefault("atol", 100 * atol)
        kwargs.setdefault("rtol", 100 * rtol)
    assert_close(actual, expected, what, **kwargs)


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
