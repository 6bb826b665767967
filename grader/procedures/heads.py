"""Procedures of exercises 3-5, run inside the worker next to student code.

`build` makes a student module and loads weights in one round trip (the
hidden tests build one per example, and shrinking builds hundreds).
"""

from __future__ import annotations

import torch


def build(worker, target: str, args=(), kwargs=None, state=None, dtype=None):
    """`module:Class(*args, **kwargs)`, converted to `dtype` and loaded with
    `state` when its state-dict names are exactly `state`'s.

    Returns (module, {state-dict name: shape}); the judge decides whether the
    names are the contract's."""
    module_name, _, path = target.partition(":")
    cls = worker.target({"module": module_name, "path": path})
    module = cls(*args, **(kwargs or {}))
    names = {}
    if isinstance(module, torch.nn.Module):
        names = {name: tuple(t.shape) for name, t in module.state_dict().items()}
        if dtype is not None:
            module.to(dtype)
        if state is not None and set(names) == set(state) and all(
                tuple(state[n].shape) == names[n] for n in names):
            module.load_state_dict(state)
    return module, names


def gradients(worker, module, args, kwargs=None, *, output_index=0, weight_seed=0):
    """Call `module(*args, **kwargs)` with every float tensor argument requiring
    grad, back-propagate a fixed random projection of output `output_index`,
    and return (output, [grad of each tensor argument or None],
    {parameter name: grad or None})."""
    args = [a.detach().clone().requires_grad_(True)
            if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
    module.zero_grad(set_to_none=True)
    out = module(*args, **(kwargs or {}))
    if output_index is not None:
        out = out[output_index]
    g = torch.Generator().manual_seed(weight_seed)
    projection = torch.randn(out.shape, generator=g, dtype=torch.float64).to(out.dtype)
    (out * projection.to(out.device)).sum().backward()
    arg_grads = [a.grad if isinstance(a, torch.Tensor) and a.requires_grad else None for a in args]
    params = {name: p.grad for name, p in module.named_parameters()}
    return out.detach(), arg_grads, params
