"""Trusted procedures that run inside the worker, next to student code.

They do what a single call cannot (backward passes, loops of calls) and
return plain tensors; the judge still decides whether the answers are right.
"""

from __future__ import annotations

import torch

from grader.procedures import contract


def _callable(worker, target):
    if isinstance(target, str):  # "module:attribute"
        module, _, path = target.partition(":")
        return worker.target({"module": module, "path": path})
    return target


def gradients(worker, target, args, kwargs=None, *, output_index=None, weight_seed=0, names=None):
    """Call `target(*args, **kwargs)` with every float tensor argument requiring
    grad, back-propagate a fixed random projection of the output, and return
    (output, [grad of each tensor argument or None], {parameter name: grad or None}).
    names: the contract's parameter names, resolved by attribute access (a
    module may hold the same layer under several names); default: every
    parameter under its first name."""
    fn = _callable(worker, target)
    args = [a.detach().clone().requires_grad_(True)
            if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
    if isinstance(fn, torch.nn.Module):
        fn.zero_grad(set_to_none=True)
    out = fn(*args, **(kwargs or {}))
    if output_index is not None:
        out = out[output_index]
    g = torch.Generator().manual_seed(weight_seed)
    projection = torch.randn(out.shape, generator=g, dtype=torch.float64).to(out.dtype)
    (out * projection.to(out.device)).sum().backward()
    arg_grads = [a.grad if isinstance(a, torch.Tensor) and a.requires_grad else None for a in args]
    params = {}
    if isinstance(fn, torch.nn.Module) and names is not None:
        tensors = {name: contract.resolve(fn, name) for name in names}
        params = {name: None if t is None else t.grad for name, t in tensors.items()}
    elif isinstance(fn, torch.nn.Module):
        params = {name: p.grad for name, p in fn.named_parameters()}
    return out.detach(), arg_grads, params


def parameter_names(worker, module):
    """[(name, shape, requires_grad)] of a student module's parameters."""
    return [(name, tuple(p.shape), bool(p.requires_grad)) for name, p in module.named_parameters()]


def buffer_names(worker, module):
    return [(name, tuple(b.shape)) for name, b in module.named_buffers()]
