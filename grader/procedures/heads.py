"""Procedures of exercises 3-5, run inside the worker next to student code.

`build` makes a student module and loads weights in one round trip (the
hidden tests build one per example, and shrinking builds hundreds).
"""

from __future__ import annotations

import torch

from grader.procedures import common


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


def gradients(worker, module, args, kwargs=None, *, output_index=0, weight_seed=0, names=None):
    """Call `module(*args, **kwargs)` with every float tensor argument requiring
    grad, back-propagate a fixed random projection of output `output_index`,
    and return (output, [grad of each tensor argument or None],
    {parameter name: grad or None})."""
    return common.gradients(worker, module, args, kwargs, output_index=output_index,
                            weight_seed=weight_seed, names=names)
