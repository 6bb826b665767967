"""The actual failing case: the tensors of a failed comparison, and a repro.

While a hidden test runs, every call it makes to the student's code
(through the sandbox proxies) is written into a small log in the judge:
the arguments, the result, and for modules how they were built (class,
constructor arguments, dtype, the weights loaded).  When an assertion
helper (grader/hidden/checks.py) finds a wrong value it calls `capture`,
which finds the call whose result is the wrong tensor and returns

- a counterexample: {"inputs": {...}, "got": {...}, "expected": {...},
  "tolerance": {...}}, each tensor as {"shape", "dtype", "values"}
  (module weights among the inputs, under their contract names);
- a repro: a self-contained Python snippet that builds those exact tensors
  as literals, calls the student's function or module from the submission
  folder and asserts closeness to the expected values (literals too; no
  grader import).  It raises AssertionError on the submission that failed
  and passes on a correct one.

A repro is only written when the expected value comes from the oracle: a
property that compares the student's code with itself (permuting the
input permutes the output) has a counterexample but no repro, since the
expected values would be the wrong submission's own.
"""

from __future__ import annotations

import math
import weakref
from collections import deque
from dataclasses import dataclass, field

import torch

MAX_LOGGED_CALLS = 32
MAX_LITERAL_ELEMENTS = 1024     # larger tensors: shape and dtype only in the JSON, and no repro

# The contract's parameter names (/work/shared/exercise-contract.md), so the
# inputs read `q`, `k`, `v`, not arg0, arg1, arg2.
CALL_PARAMETERS = {
    "scaled_dot_product_attention": ("q", "k", "v"),
    "masked_attention": ("q", "k", "v", "mask"),
    "causal_mask": ("size", "device"),
    "padding_mask": ("lengths", "max_len"),
    "sinusoidal_encoding": ("max_len", "d_model"),
    "SelfAttention": ("x",),
    "MaskedSelfAttention": ("x", "mask"),
    "Attention": ("x_q", "x_k", "x_v", "mask"),
    "MultiHeadAttention": ("query", "key", "value", "attn_mask", "key_padding_mask"),
    "PositionalEncoding": ("x",),
    "FeedForward": ("x",),
    "EncoderLayer": ("x", "src_key_padding_mask"),
    "DecoderLayer": ("x", "memory", "tgt_mask", "tgt_key_padding_mask", "memory_key_padding_mask"),
    "Transformer": ("src", "tgt", "src_key_padding_mask", "tgt_key_padding_mask"),
    "Transformer.encode": ("src", "src_key_padding_mask"),
    "Transformer.decode": ("tgt", "memory", "tgt_key_padding_mask", "memory_key_padding_mask"),
    "greedy_decode": ("model", "src", "max_len", "bos_id", "eos_id", "src_key_padding_mask"),
    "noam_lr": ("step", "d_model", "warmup", "factor"),
    "label_smoothed_cross_entropy": ("logits", "target", "eps", "ignore_index"),
    "make_optimizer": ("model", "d_model", "warmup", "factor"),
    "train_step": ("model", "batch", "optimizer", "scaler", "scheduler"),
}
INIT_PARAMETERS = {
    "SelfAttention": ("d_model",),
    "MaskedSelfAttention": ("d_model",),
    "Attention": ("d_model",),
    "MultiHeadAttention": ("d_model", "num_heads", "bias"),
    "PositionalEncoding": ("d_model", "max_len", "dropout"),
    "FeedForward": ("d_model", "d_ff", "dropout"),
    "EncoderLayer": ("d_model", "num_heads", "d_ff", "dropout"),
    "DecoderLayer": ("d_model", "num_heads", "d_ff", "dropout"),
    "Transformer": ("src_vocab_size", "tgt_vocab_size", "d_model", "num_heads", "num_layers", "d_ff",
                    "dropout", "max_len", "tie_weights"),
}
# Methods that change a module before the failing call (replayed by the repro).
_SETUP_METHODS = {"double", "float", "half", "to", "eval", "train", "load_state_dict", "requires_grad_"}


@dataclass
class Built:
    """How a student module was made: `cls(*args, **kwargs)` then `setup` calls."""

    module: str
    cls: str
    args: tuple
    kwargs: dict
    setup: list[tuple[str, tuple, dict]] = field(default_factory=list)


@dataclass
class Call:
    module: str               # the student's module (ex01_attention)
    target: str               # function name, or the class of the module called
    method: str               # "" for a function or module(...), else the method name
    args: tuple
    kwargs: dict
    result: object
    built: Built | None = None


class CallLog:
    """The latest calls a hidden test made to the student's code."""

    def __init__(self) -> None:
        self.calls: deque[Call] = deque(maxlen=MAX_LOGGED_CALLS)
        self.objects: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def clear(self) -> None:
        self.calls.clear()
        self.objects = weakref.WeakKeyDictionary()

    def record_call(self, spec: dict, path: str, owner, args, kwargs, result) -> None:
        """A call through a proxy: `owner` is the RemoteObject called, or None
        for a function/class of the student's module (`spec`)."""
        try:
            if owner is None:
                module, name = spec.get("module", ""), spec.get("path", "")
                if _is_remote(result):
                    self.objects[result] = Built(module, name, tuple(args), dict(kwargs))
                    return
                self.calls.append(Call(module, name, "", tuple(args), dict(kwargs), result))
                return
            built = self.objects.get(owner)
            if built is None:
                return
            if path in _SETUP_METHODS:
                built.setup.append((path, tuple(args), dict(kwargs)))
                return
            self.calls.append(Call(built.module, built.cls, "" if path == "forward" else path,
                                   tuple(args), dict(kwargs), result,
                                   Built(built.module, built.cls, built.args, built.kwargs,
                                         list(built.setup))))
        except TypeError:       # an object that cannot be weakly referenced: not logged
            pass

    def record_build(self, target: str, args, kwargs, state, dtype, module, *,
                     strict: bool = True) -> None:
        """The trusted `heads:build` procedure: `module:Class(*args, **kwargs)`,
        converted to `dtype`, loaded with `state`."""
        module_name, _, cls = target.partition(":")
        setup: list = []
        if dtype is not None:
            setup.append(("to", (dtype,), {}))
        if state is not None:
            # by contract name: a module may hold the same layers under other names too
            setup.append(("load_state_dict", (dict(state),), {} if strict else {"strict": False}))
        try:
            self.objects[module] = Built(module_name, cls, tuple(args), dict(kwargs or {}), setup)
        except TypeError:
            pass

    def producer(self, tensor) -> tuple[Call, tuple[int, ...]] | None:
        """The latest call whose result is (or holds) this very tensor, and where in it."""
        for call in reversed(self.calls):
            path = _find(call.result, tensor)
            if path is not None:
                return call, path
        return None


LOG = CallLog()


def _is_remote(value) -> bool:
    return type(value).__name__ == "RemoteObject"


def _find(value, target, depth: int = 0) -> tuple[int, ...] | None:
    if value is target:
        return ()
    if isinstance(value, (tuple, list)) and depth < 2:
        for i, item in enumerate(value):
            found = _find(item, target, depth + 1)
            if found is not None:
                return (i, *found)
    return None


# ------------------------------------------------------------------ values
def _float(x: float):
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _values(t: torch.Tensor):
    t = t.detach().to("cpu")
    if t.dtype == torch.bool:
        return t.tolist()
    if t.is_floating_point():
        data = t.to(torch.float64).tolist()

        def walk(v):
            return [walk(x) for x in v] if isinstance(v, list) else _float(v)
        return walk(data)
    return t.tolist()


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def encode(value):
    """A JSON-ready form: tensors as {"shape", "dtype", "values"}."""
    if isinstance(value, torch.Tensor):
        out = {"shape": list(value.shape), "dtype": dtype_name(value.dtype)}
        if value.device.type == "meta" or value.numel() > MAX_LITERAL_ELEMENTS:
            out["values"] = None
        else:
            out["values"] = _values(value)
        return out
    if isinstance(value, torch.dtype):
        return dtype_name(value)
    if isinstance(value, torch.device):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return _float(value) if isinstance(value, float) else value
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    return repr(value)


def decode(value):
    """A tensor back from `encode`'s form (other values unchanged)."""
    if isinstance(value, dict) and {"shape", "dtype", "values"} <= set(value):
        dtype = getattr(torch, value["dtype"])
        if value["values"] is None:
            return torch.zeros(value["shape"], dtype=dtype)

        def walk(v):
            return [walk(x) for x in v] if isinstance(v, list) else (float(v) if isinstance(v, str) else v)
        return torch.tensor(walk(value["values"]), dtype=dtype).reshape(value["shape"])
    return value


# ------------------------------------------------------------------ capture
def _named(names: tuple[str, ...], args: tuple, kwargs: dict, unnamed: str = "arg") -> dict:
    named = {}
    for i, arg in enumerate(args):
        named[names[i] if i < len(names) else f"{unnamed}{i}"] = arg
    named.update(kwargs)
    return named


def call_parameters(call: Call) -> tuple[str, ...]:
    """The contract's names of the arguments of `call` (a function, a
    module's forward, or a named method such as Transformer.encode)."""
    return CALL_PARAMETERS.get(f"{call.target}.{call.method}" if call.method else call.target, ())


def _inputs(call: Call) -> dict:
    inputs: dict = {}
    if call.built is not None:
        inputs.update(_named(INIT_PARAMETERS.get(call.built.cls, ()), call.built.args, call.built.kwargs,
                             unnamed="init_arg"))   # never the same name as a call's arg0
        for method, args, _ in call.built.setup:
            if method == "load_state_dict" and args and isinstance(args[0], dict):
                inputs.update(args[0])
    inputs.update(_named(call_parameters(call), call.args, call.kwargs))
    return inputs


def _relational(expected: torch.Tensor, call: Call) -> bool:
    """Whether `expected` is made of the student's own outputs (another call's
    result): the property compares the code with itself."""
    if not isinstance(expected, torch.Tensor) or expected.numel() == 0:
        return False
    values = expected.detach().to("cpu", torch.float64).flatten()
    values = values[~torch.isnan(values)]
    if values.numel() == 0 or bool(((values == 0) | (values == 1)).all()):
        return False
    for other in LOG.calls:
        if other is call:
            continue
        for item in _tensors(other.result):
            if item.is_meta or item.numel() == 0 or item.is_complex():
                continue
            pool = torch.sort(item.detach().to("cpu", torch.float64).flatten()).values
            # every expected value is one of that output's values (up to a dtype cast)
            at = torch.searchsorted(pool, values).clamp(max=pool.numel() - 1)
            below = (at - 1).clamp(min=0)
            nearest = torch.minimum((pool[at] - values).abs(), (pool[below] - values).abs())
            if bool((nearest <= 1e-6 * values.abs().clamp(min=1.0)).all()):
                return True
    return False


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _tensors(v)


def capture(actual, expected, what: str, *, atol: float = 0.0, rtol: float = 0.0,
            exact: bool = False) -> tuple[dict | None, str]:
    """(counterexample, repro) for a failed comparison of `actual` (the
    student's) with `expected`; (None, "") when nothing can be said, and
    while hypothesis is still shrinking (only its final replay is reported)."""
    if not _final_example():
        return None, ""
    try:
        found = LOG.producer(actual)
        call, path = found if found is not None else (LOG.calls[-1] if LOG.calls else None, None)
        example = {
            "inputs": {k: encode(v) for k, v in _inputs(call).items()} if call is not None else {},
            "got": {what: encode(actual)},
            "expected": {what: encode(expected)},
            "tolerance": {"atol": 0.0, "rtol": 0.0, "exact": True} if exact
            else {"atol": atol, "rtol": rtol},
        }
        if call is not None:
            example["call"] = call_text(call, path)
        repro = ""
        if found is not None and not _relational(expected, call):
            repro = repro_snippet(call, path, expected, what, atol=atol, rtol=rtol, exact=exact)
        return example, repro
    except Exception:  # noqa: BLE001 - feedback must never change a verdict
        return None, ""


def _final_example() -> bool:
    try:
        from hypothesis.control import current_build_context

        return bool(current_build_context().is_final)
    except Exception:  # noqa: BLE001 - not inside a hypothesis test
        return True


def call_text(call: Call, path: tuple[int, ...] | None) -> str:
    """`scaled_dot_product_attention(q, k, v)[1]`, `MultiHeadAttention(...)(query, key, value, attn_mask=...)[0]`."""
    names = list(_named(call_parameters(call), call.args, {}).keys())
    args = ", ".join(names + [f"{k}={k}" for k in call.kwargs])
    if call.built is not None:
        init = ", ".join(_named(INIT_PARAMETERS.get(call.built.cls, ()), call.built.args, call.built.kwargs))
        head = f"{call.built.cls}({init})" + (f".{call.method}" if call.method else "")
    else:
        head = call.target
    return f"{head}({args})" + "".join(f"[{i}]" for i in path or ())


# ------------------------------------------------------------------ repro
class NotReproducible(Exception):
    pass


def literal(value, indent: str = "") -> str:
    """Python source that rebuilds `value` exactly (tensors included)."""
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta" or value.numel() > MAX_LITERAL_ELEMENTS:
            raise NotReproducible("tensor")
        dtype = f"torch.{dtype_name(value.dtype)}"
        if value.numel() == 0:
            return f"torch.empty({tuple(value.shape)}, dtype={dtype})"
        return f"torch.tensor({_nested(_values(value), indent)}, dtype={dtype})"
    if isinstance(value, torch.dtype):
        return f"torch.{dtype_name(value)}"
    if isinstance(value, torch.device):
        if value.type != "cpu":
            raise NotReproducible("device")
        return "torch.device('cpu')"
    if isinstance(value, float):
        return f"float({_float(value)!r})" if isinstance(_float(value), str) else repr(value)
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(literal(v, indent) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v, indent) for v in value) + "]"
    if isinstance(value, dict):
        inner = indent + "    "
        items = "".join(f"\n{inner}{k!r}: {literal(v, inner)}," for k, v in value.items())
        return "{" + items + f"\n{indent}}}"
    raise NotReproducible(type(value).__name__)


def _scalar(x) -> str:
    x = _float(x) if isinstance(x, float) else x
    return f"float({x!r})" if isinstance(x, str) else repr(x)


def _nested(values, indent: str) -> str:
    """A nested list literal: a row per line, indented by depth."""
    if not isinstance(values, list):
        return _scalar(values)
    if not values or not isinstance(values[0], list):
        return "[" + ", ".join(_scalar(v) for v in values) + "]"
    inner = indent + "    "
    return "[\n" + "".join(f"{inner}{_nested(v, inner)},\n" for v in values) + indent + "]"


def repro_snippet(call: Call, path: tuple[int, ...], expected, what: str, *, atol: float, rtol: float,
                  exact: bool) -> str:
    """The self-contained script (see the module docstring); "" when the call
    cannot be written as literals (a handle argument, a GPU tensor...)."""
    try:
        lines = ["import os", "import sys", "", "import torch", "",
                 "sys.path.insert(0, os.getcwd())   # your exercise files: run this in their folder",
                 f"from {call.module} import {call.built.cls if call.built else call.target}  # noqa: E402", ""]
        if call.built is not None:
            init = [literal(a) for a in call.built.args] + [f"{k}={literal(v)}" for k, v in call.built.kwargs.items()]
            lines.append(f"module = {call.built.cls}({', '.join(init)})")
            for method, args, kwargs in call.built.setup:
                parts = [literal(a) for a in args] + [f"{k}={literal(v)}" for k, v in kwargs.items()]
                lines.append(f"module.{method}({', '.join(parts)})")
            callee = "module" + (f".{call.method}" if call.method else "")
        else:
            callee = call.target
        names = list(_named(call_parameters(call), call.args, {}).keys())
        arguments = []
        for name, value in zip(names, call.args):
            lines.append(f"{name} = {literal(value)}")
            arguments.append(name)
        for key, value in call.kwargs.items():
            lines.append(f"{key} = {literal(value)}")
            arguments.append(f"{key}={key}")
        lines += ["", f"expected = {literal(expected)}", ""]
        lines.append(f"result = {callee}({', '.join(arguments)})")
        lines.append("got = result" + "".join(f"[{i}]" for i in path))
        lines.append(f"assert isinstance(got, torch.Tensor), f'{what}: expected a tensor, got {{type(got).__name__}}'")
        lines.append(f"assert got.shape == expected.shape, f'{what}: shape {{tuple(got.shape)}}, "
                     f"expected {{tuple(expected.shape)}}'")
        if exact:
            lines.append(f"assert got.dtype == expected.dtype and torch.equal(got, expected), "
                         f"f'{what} differs:\\n{{got}}\\nexpected:\\n{{expected}}'")
        else:
            lines.append(f"torch.testing.assert_close(got.detach().to(torch.float64), expected.to(torch.float64), "
                         f"atol={atol!r}, rtol={rtol!r}, equal_nan=True,")
            lines.append(f"                           msg=lambda m: '{what} differs from the expected values: ' + m)")
        lines.append(f"print('{what}: as expected')")
        return "\n".join(lines) + "\n"
    except NotReproducible:
        return ""


def with_header(repro: str, exercise: int, test: str) -> str:
    """The repro as a student saves it: what it is and how to run it."""
    if not repro:
        return ""
    return (f"# attn-grade repro: exercise {exercise}, property {test}\n"
            "# Run it in your submission folder (`cd exercises && python repro.py`): it raises\n"
            "# AssertionError until the property holds.\n" + repro)
