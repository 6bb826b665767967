"""Plain tensors only, for the reference modules.

The tripwires (grader/sandbox/guards.py) let a forbidden built-in through
when the first frame above it that is not torch's or the standard library's
runs code of a reference module (guards.TRUSTED_MODULES, decided by code
object identity).  A student callback run from torch inside a reference call
(a hook) is then the first frame found, so it still trips.

`require_plain` closes the other way back to an original: torch hands the
function it dispatches to a tensor subclass's `__torch_function__` and to
an active function or dispatch mode, so the reference code refuses to run
with either (a device context, `with torch.device(...)`, is torch's own and
allowed).
"""

from __future__ import annotations

import torch
from torch.overrides import _get_current_function_mode_stack
from torch.utils._device import DeviceContext

_PLAIN = (torch.Tensor, torch.nn.Parameter)


def require_plain(*values) -> None:
    """Raise TypeError when a reference call would run student code that torch
    hands the built-in it dispatches: a tensor subclass among `values`, or an
    active torch function mode (other than a device context) or dispatch mode."""
    subclassed = [v for v in values if isinstance(v, torch.Tensor) and type(v) not in _PLAIN]
    modes = [m for m in _get_current_function_mode_stack() if type(m) is not DeviceContext]
    if subclassed or modes or torch._C._len_torch_dispatch_stack():
        raise TypeError("the grader's earlier exercises take plain torch tensors: no tensor "
                        "subclass, no torch function or dispatch mode while they run")
