"""Building a student's module and setting its weights BY THE CONTRACT'S NAMES.

The hidden tests never load a state dict into a student's module: a module
may hold the same layers under other names too (`self.linears = clones(...)`
with `self.W_q = self.linears[0]`), and then its state dict has more keys
than the contract.  Here every contract name (`W_q.weight`,
`encoder_layers.0.self_attn.W_o.bias`, `positional.pe`) is resolved by
attribute access, and its tensor is written in place.

Parameters reachable through no contract name are the module's own business
unless they change its output: with a `probe` (the arguments of one call),
they are set to other values and the call is repeated; the names of those
that changed the output come back, for the judge to report.
"""

from __future__ import annotations

import torch


MAX_ONE_BY_ONE = 8    # outside parameters tried one at a time to name those that matter


def resolve(module, name: str):
    """The tensor at dotted attribute path `name`, or None."""
    obj = module
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except Exception:  # noqa: BLE001 - a missing or misbehaving attribute is just missing
            return None
    return obj if isinstance(obj, torch.Tensor) else None


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool(torch.equal(torch.nan_to_num(a), torch.nan_to_num(b)))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return True


def build(worker, target: str, args=(), kwargs=None, values=None, *, names=(), dtype=None,
          probe=None, method=None, seed: int = 0):
    """`target(*args, **kwargs)` ("module:Class"), converted to `dtype`, each
    contract name in `names` (or `values`) resolved and `values` written into
    the tensors whose shape fits.

    Returns (module, {name: shape or None when absent}, [names of the other
    parameters that change the output of `module(*probe_args, **probe_kwargs)`
    (or `module.<method>(...)`)]).  The judge decides what all this means."""
    module_name, _, path = target.partition(":")
    cls = worker.target({"module": module_name, "path": path})
    module = cls(*args, **(kwargs or {}))
    if not isinstance(module, torch.nn.Module):
        return module, None, []
    if dtype is not None:
        module.to(dtype)
    wanted = list(dict.fromkeys([*(names or ()), *(values or {})]))
    found = {name: resolve(module, name) for name in wanted}
    shapes = {name: (None if t is None else tuple(t.shape)) for name, t in found.items()}
    with torch.no_grad():
        for name, value in (values or {}).items():
            t = found.get(name)
            if t is not None and tuple(t.shape) == tuple(value.shape):
                t.copy_(value)
    contract = {id(t) for t in found.values() if t is not None}
    others = [(n, p) for n, p in module.named_parameters() if id(p) not in contract]
    changing: list[str] = []
    if others and probe is not None:
        call = getattr(module, method) if method else module
        probe_args, probe_kwargs = probe
        modes = {m: m.training for m in module.modules()}
        module.eval()                      # dropout off: only the weights may change the output
        g = torch.Generator().manual_seed(seed)

        def output():
            return call(*probe_args, **(probe_kwargs or {}))

        def perturb(p):
            noise = (torch.rand(p.shape, generator=g, dtype=torch.float64) + 0.5).to(p.device, p.dtype)
            p.mul_(noise).add_(noise - 1.0)

        with torch.no_grad():
            before = output()
            saved = [p.detach().clone() for _, p in others]
            for _, p in others:
                perturb(p)
            if not _same(before, output()):
                changing = [n for n, _ in others]
                if len(others) <= MAX_ONE_BY_ONE:       # which ones: one at a time
                    for (_, p), value in zip(others, saved):
                        p.copy_(value)
                    changing = []
                    for (name, p), value in zip(others, saved):
                        perturb(p)
                        if not _same(before, output()):
                            changing.append(name)
                        p.copy_(value)
        for m, training in modes.items():
            m.training = training
    return module, shapes, changing
