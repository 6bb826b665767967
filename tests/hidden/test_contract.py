"""grader/procedures/contract.py: weights read and written by the contract's names only."""

from __future__ import annotations

import torch
import torch.nn as nn

from grader.procedures import contract


class _Worker:
    """Stands in for the sandbox worker: `target` returns the class to build."""

    def __init__(self, cls):
        self.cls = cls

    def target(self, spec):
        return self.cls


class Aliased(nn.Module):
    """Layers in a list registered first, the contract's names as aliases."""

    def __init__(self, d):
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(d, d, bias=False) for _ in range(2))
        self.W_q, self.W_k = self.linears
        self.unused = nn.Linear(d, 1)

    def forward(self, x):
        return self.W_q(x) + self.linears[1](x)


class WithGain(Aliased):
    def __init__(self, d):
        super().__init__(d)
        self.gain = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return super().forward(x) * self.gain


NAMES = ["W_q.weight", "W_k.weight"]


def test_values_go_through_the_aliases_and_harmless_extras_are_fine():
    d = 3
    values = {name: torch.full((d, d), float(i + 1)) for i, name in enumerate(NAMES)}
    x = torch.randn(2, d)
    module, shapes, changing = contract.build(_Worker(Aliased), "m:Aliased", [d], {}, values, names=NAMES,
                                              probe=([x], {}))
    assert shapes == {"W_q.weight": (d, d), "W_k.weight": (d, d)}
    assert changing == []                                  # `unused` does not change the output
    assert torch.equal(module.linears[0].weight, values["W_q.weight"])
    assert torch.equal(module(x), x @ values["W_q.weight"].T + x @ values["W_k.weight"].T)


def test_extra_parameters_that_change_the_output_are_named():
    d = 3
    _, _, changing = contract.build(_Worker(WithGain), "m:WithGain", [d], {}, None, names=NAMES,
                                    probe=([torch.randn(2, d)], {}))
    assert changing == ["gain"]                            # not `unused`, which changes nothing


def test_a_missing_name_and_a_float64_conversion():
    d = 2
    module, shapes, _ = contract.build(_Worker(Aliased), "m:Aliased", [d], {}, None,
                                       names=[*NAMES, "W_v.weight"], dtype=torch.float64)
    assert shapes["W_v.weight"] is None and shapes["W_q.weight"] == (d, d)
    assert module.W_q.weight.dtype == torch.float64
