"""Worker-side protections: forbidden-API tripwires, global-state reset,
resource limits.  Runs inside the untrusted worker, so it only *reports*;
the judge decides what a report is worth (and also scans the source itself).
"""

from __future__ import annotations

import functools
import importlib
import random
import resource
import sys

import torch

from grader.reference.trust import called_by_reference


class ForbiddenCall(BaseException):
    """Raised when student code calls a built-in the contract forbids.

    A BaseException, so a student's `except Exception` does not swallow it;
    the worker also remembers the trip, so even `except BaseException` does
    not hide it.
    """


class Tripwires:
    """Replace forbidden torch callables by wrappers that raise when armed."""

    def __init__(self) -> None:
        self.armed = False
        self.tripped: str | None = None

    def install(self, dotted_names: tuple[str, ...] | list[str]) -> None:
        for dotted in dotted_names:
            original = _resolve(dotted)
            if original is None:
                continue
            wrapper = self._wrap(dotted, original)
            for owner, attr in _references_to(original):
                try:
                    setattr(owner, attr, wrapper)
                except (AttributeError, TypeError):
                    pass
            for op_name in ATEN_OPS.get(dotted, ()):
                packet = getattr(torch.ops.aten, op_name, None)
                if packet is not None:
                    setattr(torch.ops.aten, op_name, _TrippedOp(packet, self._trip_for(dotted)))

    def _trip_for(self, dotted: str):
        def trip():
            if self.armed and not called_by_reference():
                self.tripped = dotted
                raise ForbiddenCall(f"calls {dotted}, which this exercise asks you to write yourself")
        return trip

    def _wrap(self, dotted: str, original):
        tripwires = self
        short = dotted.removeprefix("torch.nn.functional.").removeprefix("torch.nn.")

        def trip():
            if tripwires.armed and not called_by_reference():
                tripwires.tripped = dotted
                raise ForbiddenCall(f"calls {dotted}, which this exercise asks you to write yourself")

        if isinstance(original, type):
            class Tripwire(original):  # type: ignore[misc, valid-type]
                def __init__(self, *args, **kwargs):
                    trip()
                    super().__init__(*args, **kwargs)

            Tripwire.__name__ = original.__name__
            Tripwire.__qualname__ = original.__qualname__
            Tripwire.__module__ = original.__module__
            return Tripwire

        @functools.wraps(original)
        def tripwire(*args, **kwargs):
            trip()
            return original(*args, **kwargs)

        tripwire.__name__ = short.rsplit(".", 1)[-1]
        del tripwire.__wrapped__  # functools.wraps' way back to the original (inspect.unwrap)
        return tripwire

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


# The ATen operators behind a forbidden built-in, reachable as torch.ops.aten.<name>.
ATEN_OPS: dict[str, tuple[str, ...]] = {
    "torch.nn.functional.scaled_dot_product_attention": (
        "scaled_dot_product_attention", "_scaled_dot_product_attention_math",
        "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_flash_attention_for_cpu"),
    "torch.nn.functional.multi_head_attention_forward": ("_native_multi_head_attention",),
    "torch.nn.functional.cross_entropy": ("cross_entropy_loss",),
}


class _TrippedOp:
    """Stands in for torch.ops.aten.<op>: calling it, or any overload of it
    (`.default`), trips first."""

    def __init__(self, packet, trip) -> None:
        self._packet = packet
        self._trip = trip

    def __call__(self, *args, **kwargs):
        self._trip()
        return self._packet(*args, **kwargs)

    def __getattr__(self, name: str):
        attr = getattr(self._packet, name)
        if callable(attr) and not name.startswith("__"):
            def tripped(*args, **kwargs):
                self._trip()
                return attr(*args, **kwargs)
            return tripped
        return attr


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
