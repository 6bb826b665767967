"""Which forbidden built-in calls the worker's tripwires let through: those
made by the grader's reference modules (grader/reference/), never a
student's.

`called_by_reference()` walks up from the tripwire past torch's own frames
(an nn.MultiheadAttention inside nn.TransformerEncoderLayer, torch.func's
functional_call, nn.Module.__call__) and the tripwire's own; the first frame
that is neither decides: it must run in the namespace of a loaded reference
module.  Namespaces are compared by identity, so a student function cannot
pass for the grader's by its file name, module name or code object, and a
student callback run from torch inside a reference call (a hook, a
`__torch_function__`) is the first frame found, so it still trips.

`require_plain` closes the other way back to an original: torch hands the
function it dispatches to a tensor subclass's `__torch_function__` and to
an active function or dispatch mode, so the reference code refuses to run
with either (a device context, `with torch.device(...)`, is torch's own and
allowed).
"""

from __future__ import annotations

import sys

import torch
from torch.overrides import _get_current_function_mode_stack
from torch.utils._device import DeviceContext

from grader.reference import PACKAGE, TRUSTED_MODULES

_GUARDS = "grader.sandbox.guards"
_PLAIN = (torch.Tensor, torch.nn.Parameter)


def _namespace_of(name: str):
    module = sys.modules.get(name) if isinstance(name, str) else None
    return getattr(module, "__dict__", None)


def _passed_through(namespace: dict) -> bool:
    """A frame of torch itself or of the tripwire wrappers: look further up."""
    name = namespace.get("__name__")
    if not isinstance(name, str) or _namespace_of(name) is not namespace:
        return False
    return name == "torch" or name.startswith("torch.") or name == _GUARDS


def called_by_reference(depth: int = 1) -> bool:
    """Whether the forbidden call that hit a tripwire comes from the grader's
    reference code (`depth`: frames to skip, the caller of this function
    being 1)."""
    trusted = [_namespace_of(f"{PACKAGE}.{module}") for module in TRUSTED_MODULES]
    trusted = [ns for ns in trusted if ns is not None]
    if not trusted:
        return False
    frame = sys._getframe(depth)
    while frame is not None:
        namespace = frame.f_globals
        if any(namespace is ns for ns in trusted):
            return True
        if not _passed_through(namespace):
            return False
        frame = frame.f_back
    return False


def require_plain(*values) -> None:
    """Raise TypeError when a reference call would run student code that torch
    hands the built-in it dispatches: a tensor subclass among `values`, or an
    active torch function mode (other than a device context) or dispatch mode."""
    subclassed = [v for v in values if isinstance(v, torch.Tensor) and type(v) not in _PLAIN]
    modes = [m for m in _get_current_function_mode_stack() if type(m) is not DeviceContext]
    if subclassed or modes or torch._C._len_torch_dispatch_stack():
        raise TypeError("the grader's earlier exercises take plain torch tensors: no tensor "
                        "subclass, no torch function or dispatch mode while they run")
