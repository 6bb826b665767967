"""Worker-side protections: forbidden-API tripwires, global-state reset,
resource limits.  Runs inside the untrusted worker, so it only *reports*;
the judge decides what a report is worth (and also scans the source itself).
"""

from __future__ import annotations

import functools
import importlib
import os
import random
import resource
import sys
import types

import torch

from grader.reference import PACKAGE as REFERENCE_PACKAGE
from grader.reference import TRUSTED_MODULES as REFERENCE_MODULES


class ForbiddenCall(BaseException):
    """Raised when student code calls a built-in the contract forbids.

    A BaseException, so a student's `except Exception` does not swallow it;
    the worker also remembers the trip, so even `except BaseException` does
    not hide it.
    """


# ------------------------------------------------------------------ tripwires
# How the originals are kept out of the submission's reach.
#
# Each forbidden built-in is replaced, wherever torch holds it, by a stand-in
# that holds NO reference to it: a plain function (or, for a class, a class
# with no base but `object`) that knows only the built-in's dotted name.
# There is no closure cell, `__wrapped__`, `__bases__` or attribute leading
# back to the original.  The originals live in `_ORIGINALS` below, a private
# table of this module: reaching it takes reflection (`__globals__`,
# `sys.modules`, `gc`, frames, importing `grader`), and the judge's static
# scan (grader/submission.py) flags every such route as forbidden.
#
# Trusted grader code inside the worker.  A module named in TRUSTED_MODULES
# (e.g. the reference implementations that a later exercise is graded on top
# of, thin wrappers over nn.MultiheadAttention, F.scaled_dot_product_attention,
# nn.TransformerEncoderLayer...) may call forbidden built-ins while a
# student's call is still caught.  The rule, applied when a stand-in is
# called while armed: walk up the stack from the stand-in's caller, passing
# over frames of torch, of the standard library and of the stand-ins
# themselves (one built-in calling another); if the first other frame
# runs code of a trusted module, the call is the grader's own and goes
# through; otherwise (a student frame, or anything else) it is forbidden.
# "Code of a trusted module" is decided by the identity of code objects
# collected when the tripwires are installed, before any student code runs
# (a file name can be forged with `compile`; a code object's identity
# cannot).  So a trusted module must:
#   - be listed in TRUSTED_MODULES (importable in the worker, imported at
#     install time), or be handed to `trust_module` by the worker before any
#     student code runs (a reference dependency loaded from a file, then
#     aliased under the exercise's module name in sys.modules, say),
#   - call the built-in from its own function (a `forward` that calls the
#     built-in module, not a bare alias or subclass without methods: then no
#     frame of it is on the stack),
#   - never call a callable it was handed by student code (that would launder
#     the student's call).
TRUSTED_MODULES: tuple[str, ...] = tuple(f"{REFERENCE_PACKAGE}.{name}"
                                         for name in REFERENCE_MODULES)

_ORIGINALS: dict[str, object] = {}          # dotted name -> the original built-in
_REAL_SUBCLASSES: dict[type, type] = {}     # a student subclass of a stand-in -> a real one
_TRUSTED_CODE: dict[int, object] = {}       # id(code) -> code (kept alive, so ids stay unique)
_PASS_THROUGH: tuple[str, ...] = ()         # folders whose frames are passed over
_ACTIVE: "Tripwires | None" = None


class Tripwires:
    """Replace forbidden torch callables by stand-ins that raise when armed."""

    def __init__(self) -> None:
        self.armed = False
        self.tripped: str | None = None

    def install(self, dotted_names: tuple[str, ...] | list[str]) -> None:
        global _ACTIVE
        _ACTIVE = self
        _prepare_trust()
        for dotted in dotted_names:
            original = _resolve(dotted)
            if original is None:
                continue
            _ORIGINALS[dotted] = original
            stand_in = _stand_in_class(dotted, original) if isinstance(original, type) \
                else _stand_in_function(dotted, original)
            for owner, attr in _references_to(original):
                _replace(owner, attr, stand_in)
            for op_name in ATEN_OPS.get(dotted, ()):
                _replace_op(dotted, op_name)

    def scope(self, func):
        """Arm the tripwires only while `func` runs (exercise 8's loss)."""
        tripwires = self

        @functools.wraps(func)
        def scoped(*args, **kwargs):
            previous = tripwires.armed
            tripwires.armed = True
            try:
                return func(*args, **kwargs)
            finally:
                tripwires.armed = previous

        return scoped


def _gate(dotted: str, caller) -> None:
    """Raise ForbiddenCall when armed and the call is not trusted grader code's."""
    tripwires = _ACTIVE
    if tripwires is None or not tripwires.armed or _called_by_trusted_code(caller):
        return
    tripwires.tripped = dotted
    raise ForbiddenCall(f"calls {dotted}, which this exercise asks you to write yourself")


def _called_by_trusted_code(frame) -> bool:
    while frame is not None:
        code = frame.f_code
        if id(code) in _TRUSTED_CODE:
            return True
        if not code.co_filename.startswith(_PASS_THROUGH):
            return False
        frame = frame.f_back
    return False


def _stand_in_function(dotted: str, original):
    """A function that knows only `dotted` (no closure over the original)."""
    def stand_in(*args, **kwargs):
        _gate(dotted, sys._getframe(1))
        return _ORIGINALS[dotted](*args, **kwargs)

    name = getattr(original, "__name__", dotted.rsplit(".", 1)[-1])
    stand_in.__name__ = name
    stand_in.__qualname__ = name
    stand_in.__module__ = dotted.rpartition(".")[0]
    stand_in.__doc__ = getattr(original, "__doc__", None)
    return stand_in


_STAND_IN_CODE = _stand_in_function("", len).__code__


def _is_stand_in(obj) -> bool:
    return (isinstance(obj, (_StandInOp, _StandInType))
            or getattr(obj, "__code__", None) is _STAND_IN_CODE)


class _StandInType(type):
    """The metaclass of the stand-ins for forbidden classes.  A stand-in has
    no base but `object`: calling it builds an instance of the original
    (when allowed), and isinstance / issubclass answer as for the original."""

    def __call__(cls, *args, **kwargs):
        dotted = cls._forbidden_name
        _gate(dotted, sys._getframe(1))
        original = _ORIGINALS[dotted]
        if "_forbidden_name" in cls.__dict__:
            return original(*args, **kwargs)
        # A subclass of the stand-in, instantiated where the built-in is allowed.
        real = _REAL_SUBCLASSES.get(cls)
        if real is None:
            body = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
            real = _REAL_SUBCLASSES[cls] = type(original)(cls.__name__, (original,), body)
        return real(*args, **kwargs)

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, _ORIGINALS[cls._forbidden_name])

    def __subclasscheck__(cls, sub) -> bool:
        return isinstance(sub, type) and issubclass(sub, _ORIGINALS[cls._forbidden_name])


def _stand_in_class(dotted: str, original: type) -> type:
    return _StandInType(original.__name__, (), {
        "_forbidden_name": dotted, "__module__": original.__module__,
        "__qualname__": original.__qualname__, "__doc__": original.__doc__})


class _StandInOp:
    """Stands in for torch.ops.aten.<op>: calling it, or any overload of it
    (`.default`), is gated; it holds only names."""

    __slots__ = ("_dotted", "_op")

    def __init__(self, dotted: str, op: str) -> None:
        self._dotted = dotted
        self._op = op

    def __call__(self, *args, **kwargs):
        _gate(self._dotted, sys._getframe(1))
        return _ORIGINALS[f"torch.ops.aten.{self._op}"](*args, **kwargs)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        dotted, key = self._dotted, f"torch.ops.aten.{self._op}"
        if not callable(getattr(_ORIGINALS[key], name)):
            return getattr(_ORIGINALS[key], name)  # plain data (names, tags)

        def overload(*args, **kwargs):
            _gate(dotted, sys._getframe(1))
            return getattr(_ORIGINALS[key], name)(*args, **kwargs)

        overload.__name__ = overload.__qualname__ = name
        return overload


def _replace(owner, attr: str, stand_in) -> None:
    try:
        setattr(owner, attr, stand_in)
    except (AttributeError, TypeError):
        pass


def _replace_op(dotted: str, op_name: str) -> None:
    """The ATen operator behind a built-in: torch.ops.aten.<op>, and the C
    functions torch binds it to (torch.<op>, torch._C._nn.<op>...)."""
    packet = getattr(torch.ops.aten, op_name, None)
    if packet is not None:
        _ORIGINALS.setdefault(f"torch.ops.aten.{op_name}", packet)
        _replace(torch.ops.aten, op_name, _StandInOp(dotted, op_name))
    for owner in (torch._C._nn, torch._C._VariableFunctions, torch._C._VariableFunctionsClass, torch):
        function = getattr(owner, op_name, None)
        if callable(function) and not _is_stand_in(function):
            key = f"{dotted}:{op_name}"
            _ORIGINALS.setdefault(key, function)
            _replace(owner, op_name, _stand_in_function(key, function))


def _prepare_trust() -> None:
    """Collect the code objects of TRUSTED_MODULES (before any student code
    runs), and the folders whose frames the trust walk passes over."""
    global _PASS_THROUGH
    folders = {os.path.dirname(torch.__file__), os.path.dirname(os.__file__),
               os.path.dirname(functools.__file__)}
    _PASS_THROUGH = tuple(sorted(f.rstrip(os.sep) + os.sep for f in folders)) + (
        "<frozen ", __file__)  # this file: the stand-ins' own frames (one built-in calling another)
    for name in TRUSTED_MODULES:
        trust_module(importlib.import_module(name))


def trust_module(module: types.ModuleType) -> None:
    """Let the functions and classes `module` defines call forbidden
    built-ins (see "Trusted grader code" above).  Only the worker calls this,
    before any student code runs."""
    for value in vars(module).values():
        for code in _code_objects(value, module.__name__):
            _TRUSTED_CODE[id(code)] = code


def _code_objects(value, module_name: str, depth: int = 0):
    """The code objects of the functions and classes a module defines itself."""
    if depth > 3:
        return
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    if isinstance(value, property):
        for part in (value.fget, value.fset, value.fdel):
            if part is not None:
                yield from _code_objects(part, module_name, depth + 1)
        return
    if isinstance(value, types.FunctionType) and value.__module__ == module_name:
        yield from _nested_code(value.__code__)
        # a decorated function (functools.wraps): the function it wraps is the module's too
        yield from _code_objects(getattr(value, "__wrapped__", None), module_name, depth + 1)
    elif isinstance(value, type) and value.__module__ == module_name:
        for member in vars(value).values():
            yield from _code_objects(member, module_name, depth + 1)


def _nested_code(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _nested_code(const)


# The ATen operators (and the torch-level functions bound to them) behind a
# forbidden built-in, including the fast paths torch's modules take.
ATEN_OPS: dict[str, tuple[str, ...]] = {
    "torch.nn.functional.scaled_dot_product_attention": (
        "scaled_dot_product_attention", "_scaled_dot_product_attention_math",
        "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_flash_attention_for_cpu"),
    "torch.nn.functional.multi_head_attention_forward": ("_native_multi_head_attention",),
    "torch.nn.TransformerEncoderLayer": ("_transformer_encoder_layer_fwd",),
    "torch.nn.functional.cross_entropy": ("cross_entropy_loss",),
}


def _resolve(dotted: str):
    module_name, _, attr = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return getattr(module, attr, None)


def _references_to(obj):
    """Every (module, attribute) under torch that holds `obj`: students can
    reach a built-in by many paths (torch.nn.modules.activation...)."""
    seen = set()
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "torch" or name.startswith("torch.")):
            continue
        try:
            items = list(vars(module).items())
        except TypeError:
            continue
        for attr, value in items:
            if value is obj and (id(module), attr) not in seen:
                seen.add((id(module), attr))
                yield module, attr
    if not isinstance(obj, type):
        # The C implementations behind the Python names.
        for owner in (torch._C._nn, torch._C._VariableFunctions, torch):
            name = getattr(obj, "__name__", "")
            if name and getattr(owner, name, None) is not None and (id(owner), name) not in seen:
                if getattr(owner, name) is not obj and callable(getattr(owner, name)):
                    seen.add((id(owner), name))
                    yield owner, name


# ------------------------------------------------------------------- state
class GlobalState:
    """Remember torch's global settings at start-up and put them back before
    each test, whatever the submission changed when imported or called."""

    def __init__(self) -> None:
        self.default_dtype = torch.get_default_dtype()
        self.num_threads = torch.get_num_threads()
        self.deterministic = torch.are_deterministic_algorithms_enabled()

    def reset(self, seed: int) -> None:
        torch.set_default_dtype(self.default_dtype)
        torch.set_grad_enabled(True)
        if torch.get_num_threads() != self.num_threads:
            torch.set_num_threads(self.num_threads)
        if torch.are_deterministic_algorithms_enabled() != self.deterministic:
            torch.use_deterministic_algorithms(self.deterministic)  # slow: only when changed
        torch.manual_seed(seed)
        random.seed(seed)
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed(seed % (2**32))


# ------------------------------------------------------------------- limits
def limit_resources(memory_bytes: int | None) -> None:
    """Cap the address space (CPU workers only: CUDA reserves huge virtual
    ranges) and disable core dumps."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    if memory_bytes:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        try:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        except (ValueError, OSError):
            pass
