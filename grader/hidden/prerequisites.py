"""Is a failure really this exercise's fault?

Exercises 6 and 7 import the student's earlier exercises (MultiHeadAttention,
PositionalEncoding, the layers, causal_mask...).  When one of those is wrong,
every test of the later exercise fails with a confusing mismatch.  So when a
test of such an exercise fails, `explain_failures` runs a quick check of each
earlier exercise the submission actually imports (lowest number first) and,
when one is broken, puts "fix exercise N first: your X fails its own tests
(...)" in front of the message.

The checks are judge-side comparisons with PyTorch and the paper, like every
hidden test; they only run after a failure, so a correct submission pays
nothing, and their verdict is kept for the rest of the run.
"""

from __future__ import annotations

import functools
import math
import re
import weakref
from pathlib import Path

import torch

from grader.dependencies import fix_first
from grader.hidden import oracles
from grader.hidden import strategies as S
from grader.outcomes import PropertyFailure, StudentAbort, StudentError
from grader.registry import by_module, get

_VERDICTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_TOL = 1e-6   # every check runs in float64


def _student(client, number: int):
    from grader.sandbox.client import StudentModule

    return StudentModule(client, get(number).module)


def _differs(got, expected, what: str) -> str:
    if not isinstance(got, torch.Tensor):
        return f"{what} is a {type(got).__name__}, not a tensor"
    if tuple(got.shape) != tuple(expected.shape):
        return f"{what} has shape {tuple(got.shape)} instead of {tuple(expected.shape)}"
    error = (got.detach().to("cpu", torch.float64) - expected.to(torch.float64)).abs().max().item()
    if not math.isfinite(error) or error > _TOL * (1 + expected.abs().max().item()):
        return f"{what} differs by {error:.3g}"
    return ""


def _build(client, target: str, args, values, *, names=None):
    """(module in float64 holding `values` at the contract's names, {name: shape or None}, [])."""
    from grader.sandbox.client import run_procedure

    return run_procedure(client, "contract:build", target, list(args), {}, values or None,
                         names=list(names or values), dtype=torch.float64)


# ---------------------------------------------------------------- the checks
def _check_1(client) -> tuple[str, str]:
    m = _student(client, 1)
    q, k, v = (S.randn((2, 3, 4), seed) for seed in (1, 2, 3))
    out, _ = m.scaled_dot_product_attention(q, k, v)
    return "scaled_dot_product_attention", _differs(out, oracles.attention(q, k, v)[0],
                                                    "its output")


def _check_2(client) -> tuple[str, str]:
    m = _student(client, 2)
    mask = m.causal_mask(4)
    if not isinstance(mask, torch.Tensor) or not torch.equal(mask.to("cpu"), oracles.causal_mask(4)):
        return "causal_mask", "causal_mask(4) is not True exactly above the diagonal"
    lengths = torch.tensor([3, 1])
    pad = m.padding_mask(lengths, 4)
    if not isinstance(pad, torch.Tensor) or not torch.equal(pad.to("cpu"), oracles.padding_mask(lengths, 4)):
        return "padding_mask", "padding_mask([3, 1], 4) is not True at positions >= length"
    q, k, v = (S.randn((2, 4, 3), seed) for seed in (4, 5, 6))
    full = oracles.causal_mask(4) | oracles.padding_mask(torch.tensor([4, 2]), 4)[:, None, :]
    out, _ = m.masked_attention(q, k, v, full)
    return "masked_attention", _differs(out, oracles.attention(q, k, v, full)[0],
                                        "its output with a causal + padding mask")


def _check_4(client) -> tuple[str, str]:
    d, h = 8, 2
    state = S.random_state({f"W_{p}.{w}": (d, d) if w == "weight" else (d,)
                            for p in "qkvo" for w in ("weight", "bias")}, 41, torch.float64)
    mha, shapes, _ = _build(client, "ex04_multi_head:MultiHeadAttention", [d, h], state)
    missing = [k for k in state if tuple(shapes.get(k) or ()) != tuple(state[k].shape)]
    if missing:
        return "MultiHeadAttention", f"it has no parameter {missing[0]} of shape {tuple(state[missing[0]].shape)}"
    ref = torch.nn.MultiheadAttention(d, h, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([state[f"W_{p}.weight"] for p in "qkv"]))
        ref.in_proj_bias.copy_(torch.cat([state[f"W_{p}.bias"] for p in "qkv"]))
        ref.out_proj.weight.copy_(state["W_o.weight"])
        ref.out_proj.bias.copy_(state["W_o.bias"])
    ref.train()  # train mode, dropout 0: no fast path
    x, mem = S.randn((2, 4, d), 42), S.randn((2, 5, d), 43)
    causal = oracles.causal_mask(4)
    pad = S.lengths_mask([5, 2], 5)
    for what, args, kwargs in (
            ("self-attention with a causal mask", (x, x, x), {"attn_mask": causal}),
            ("attention over another sequence with a key padding mask", (x, mem, mem),
             {"key_padding_mask": pad})):
        got = mha(*args, **kwargs)
        if not isinstance(got, tuple) or len(got) != 2:
            return "MultiHeadAttention", "it does not return (output, weights)"
        with torch.no_grad():
            expected, _ = ref(*args, need_weights=False, **kwargs)
        problem = _differs(got[0], expected, f"its output ({what}) vs nn.MultiheadAttention")
        if problem:
            return "MultiHeadAttention", problem
    return "MultiHeadAttention", ""


def _check_5(client) -> tuple[str, str]:
    module = _student(client, 5).PositionalEncoding(8, 16)
    x = S.randn((2, 6, 8), 51, torch.float32)
    got = module(x)
    expected = x.double() + oracles.sinusoidal(6, 8)
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(expected.shape):
        return "PositionalEncoding", "its output does not have the input's shape"
    error = (got.double() - expected).abs().max().item()
    if not error <= 1e-5:
        return "PositionalEncoding", f"x + PE differs from the paper's table by {error:.3g}"
    return "PositionalEncoding", ""


def _check_6(client) -> tuple[str, str]:
    d, h, d_ff = 8, 2, 16
    x, mem = S.randn((2, 4, d), 61), S.randn((2, 5, d), 62)
    causal = oracles.causal_mask(4)
    tpad, spad = S.lengths_mask([4, 3], 4), S.lengths_mask([5, 2], 5)
    for kind, name in (("encoder", "EncoderLayer"), ("decoder", "DecoderLayer")):
        keys = oracles.layer_keys(kind)
        _, shapes, _ = _build(client, f"ex06_blocks:{name}", [d, h, d_ff], {}, names=keys)
        missing = [k for k in keys if shapes.get(k) is None]
        if missing:
            return name, f"it has no parameter {missing[0]} (the contract's names)"
        state = S.random_state({k: tuple(shapes[k]) for k in keys}, 63, torch.float64)
        layer, _, _ = _build(client, f"ex06_blocks:{name}", [d, h, d_ff], state)
        if kind == "encoder":
            got = layer(x, src_key_padding_mask=spad[:, :4])
            expected = oracles.encoder_layer(state, h, x, spad[:, :4])
        else:
            got = layer(x, mem, tgt_mask=causal, tgt_key_padding_mask=tpad, memory_key_padding_mask=spad)
            expected = oracles.decoder_layer(state, h, x, mem, causal, tpad, spad)
        problem = _differs(got, expected, f"its output vs nn.Transformer{name}")
        if problem:
            return name, problem
    return "EncoderLayer and DecoderLayer", ""


CHECKS = {1: _check_1, 2: _check_2, 4: _check_4, 5: _check_5, 6: _check_6}


def verdict(client, number: int) -> tuple[str, str]:
    """(what was checked, "" or what is wrong with it) for exercise `number`,
    computed once per worker client."""
    cache = _VERDICTS.setdefault(client, {})
    if number not in cache:
        try:
            cache[number] = CHECKS[number](client)
        except StudentAbort as exc:
            cache[number] = (get(number).module, f"it stops with: {exc.message.splitlines()[0][:200]}")
        except StudentError as exc:
            head = f"{exc.type_name}: {exc.message}" if exc.type_name else exc.message
            cache[number] = (get(number).module, f"it raises {head.splitlines()[0][:200]}")
        except PropertyFailure as exc:  # pragma: no cover - the checks do not raise it
            cache[number] = (get(number).module, exc.message[:200])
        except Exception as exc:  # the student's answer broke the check itself  # noqa: BLE001
            cache[number] = (get(number).module, f"its answer could not be checked ({type(exc).__name__})")
    return cache[number]


def imported_exercises(submission, module: str) -> list[int]:
    """Numbers of the earlier exercises `module` imports, directly or not."""
    seen = submission.imports_closure(module)
    return sorted(ex.number for ex in map(by_module, seen) if ex is not None)


def broken_dependency(ctx) -> tuple[int, str] | None:
    """(number, "your X fails its own tests (...)") for the lowest-numbered
    imported exercise that fails its quick check; None when all pass."""
    if ctx is None or ctx.client is None or ctx.options.dependencies != "own":
        return None   # graded on the grader's earlier exercises: nothing of the student's to blame
    for number in imported_exercises(ctx.submission, ctx.exercise.module):
        if number not in CHECKS or number >= ctx.exercise.number:
            continue
        what, problem = verdict(ctx.client, number)
        if problem:
            return number, f"your {what} (exercise {number}) fails its own tests: {problem}"
    return None


def explain_failures(test):
    """Decorate a hidden test (it must take the `ctx` fixture): when it fails,
    say first which imported earlier exercise is broken, if any."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        try:
            return test(*args, **kwargs)
        except PropertyFailure as exc:
            blame = broken_dependency(kwargs.get("ctx"))
            if blame is None:
                raise
            number, text = blame
            raise PropertyFailure(
                f"{fix_first([number])}: {text}. This failure may come from there.\n{exc.message}",
                hint=f"Run `attn-grade exercise {number}` and fix it, then grade this exercise again.",
                max_error=exc.max_error) from None
        except StudentError as exc:
            ctx = kwargs.get("ctx")
            if ctx is None:
                raise
            where = exc.where[0] if exc.where else ""
            if where and where != ctx.exercise.file:
                raise _raised_in_dependency(ctx, exc, where) from None
            blame = broken_dependency(ctx)
            if blame is None:
                raise
            number, text = blame
            raise StudentError(f"{exc.message}\n{fix_first([number])}: {text}. "
                               "This error may come from there.", type_name=exc.type_name,
                               traceback=exc.traceback, where=exc.where, label=exc.label) from None

    return wrapper


_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def _raised_in_dependency(ctx, exc: StudentError, where: str) -> StudentError:
    """An error raised inside an earlier exercise's file.  If that exercise
    passes its quick check, the likely culprit is how this exercise calls it
    (a mask of the wrong shape...): point at the calling line instead, so the
    runner does not send the student to fix the wrong exercise."""
    dep = by_module(Path(where).stem)
    if (dep is None or dep.number not in CHECKS or dep.number >= ctx.exercise.number
            or ctx.options.dependencies != "own"):
        return exc
    what, problem = verdict(ctx.client, dep.number)
    if problem:
        return StudentError(f"{exc.message}\nyour {what} (exercise {dep.number}) fails its own tests: "
                            f"{problem}", type_name=exc.type_name, traceback=exc.traceback,
                            where=exc.where, label=exc.label)
    calls = [(f, int(n)) for f, n in _FRAME.findall(exc.traceback or "")
             if Path(f).name == ctx.exercise.file]
    line = calls[-1][1] if calls else None
    at = f"{ctx.exercise.file}" + (f" line {line}" if line else "")
    return StudentError(
        f"{exc.message}\n(raised inside {where}, called from {at}; your {what} passes its own "
        f"checks, so look at the arguments {ctx.exercise.file} passes to it: which tensors, which "
        "masks, their shapes)", type_name=exc.type_name, traceback=exc.traceback,
        where=[ctx.exercise.file, line] if line else None, label=exc.label)
