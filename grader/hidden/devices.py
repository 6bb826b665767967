"""Running student code on another device than the CPU, GPU or not.

New tensors (masks, constants) must be built on the input's device, and fixed
tables kept in buffers so that `.to(device)` moves them.  On a GPU the tests
use it; on a CPU-only machine (CI) they use the "meta" device, whose tensors
have a shape and a dtype but no data: a mask built on the CPU, or a plain
tensor attribute made in `__init__` that `.to()` does not move, shows up
there just as on a GPU.  Correct code that needs values (`.item()`, a loop
over `lengths`) cannot run on meta: then nothing is checked.
"""

from __future__ import annotations

import torch

from grader.hidden import checks
from grader.outcomes import StudentError, StudentNotImplemented

WARM_TIMEOUT = 120.0   # the device's start-up, paid by the grader

# An error raised only because a meta tensor has no values (`.item()`, a
# Python loop over `lengths`, `.tolist()`): correct code may do that.
DATA_DEPENDENT = ("meta", "no data", "item()")
# An error saying two tensors live on different devices: something built on the CPU.
DEVICE_MISMATCH = ("same device", "expected all tensors", "expected device", "device mismatch",
                   "is on cpu", "different device")

BUILD_ON_THE_INPUTS_DEVICE = (
    "Build every new tensor on the input's device (torch.ones(..., device=x.device), "
    "mask.to(scores.device)), and keep fixed tensors made in __init__ in buffers "
    "(self.register_buffer(...)) or as Python numbers (math.sqrt(d_k)): a plain tensor attribute "
    "does not follow .to(device).")


def other_device(ctx) -> torch.device:
    """The grading device when it is a GPU, else "meta".  Its start-up cost (the
    CUDA context; the first meta kernels import torch's symbolic-shape
    machinery) is paid first, outside the student's time limit."""
    from grader.sandbox.client import run_procedure

    device = torch.device(ctx.device) if ctx.device != "cpu" else torch.device("meta")
    run_procedure(ctx.client, "masks:warm_device", str(device), timeout=WARM_TIMEOUT)
    return device


def call_on_device(call, device: torch.device, what: str, *, hint: str = BUILD_ON_THE_INPUTS_DEVICE):
    """Run `call()`.  A device mismatch fails the property (with `hint`); None
    when it failed only because meta tensors hold no data."""
    try:
        return call()
    except (StudentError, StudentNotImplemented) as exc:
        text = str(exc.message).lower()
        if any(s in text for s in DEVICE_MISMATCH):
            where = getattr(exc, "where", None)
            at = f" (raised at {where[0]} line {where[1]})" if where else ""
            checks.fail(f"{what} failed on device {device.type}: {exc.message}{at}", hint=hint)
        if device.type == "meta" and any(s in text for s in DATA_DEPENDENT):
            return None
        raise


def assert_on(value, device: torch.device, what: str) -> None:
    value = checks.require_tensor(value, what)
    checks.assert_true(value.device.type == device.type, f"{what} is on {value.device}, not on {device}",
                       hint="Do not move tensors to a fixed device inside the module.")
