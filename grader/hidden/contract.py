"""The student's modules, built and loaded through the contract's names only.

`build` asks the worker (procedure `contract:build`) to construct a module,
resolve each contract name (`W_q.weight`, `feed_forward.linear1.bias`, ...)
by attribute access and write the test's weights there.  Other names for the
same tensors are fine (a list `self.linears` with `self.W_q = self.linears[0]`);
parameters outside the contract are fine too unless they change the output,
and then they are reported by name.  No state dict is ever loaded into a
student's module.
"""

from __future__ import annotations

from grader import hints
from grader.hidden import checks
from grader.sandbox.client import run_procedure


OUTSIDE_THE_CONTRACT = ("Keep only the contract's layers: every weight the output depends on must be "
                        "reachable through the contract's attribute names.")


def build(client, target: str, args=(), kwargs=None, *, expected: dict[str, tuple],
          values=None, dtype=None, probe=None, method=None, owner: str, contract: str,
          missing_hint: str = "", missing_bias_hint: str = "", extra_bias_hint: str = "", extra_hint=None):
    """The module, holding `values` at the contract's names.

    expected: {contract name: shape}; probe: (args, kwargs) of one call used
    to see whether parameters outside the contract change the output (None:
    not checked here); extra_hint: a text, or a function of the names of the
    parameters outside the contract that change the output.  Fails, naming what is wrong, when a contract name is
    absent or has another shape, or when other parameters change the output."""
    module, shapes, changing = run_procedure(client, "contract:build", target, list(args),
                                             kwargs or {}, values, names=list(expected),
                                             dtype=dtype, probe=probe, method=method)
    if shapes is None:
        checks.fail(f"{owner} is not an nn.Module", hint=f"Subclass nn.Module: {contract}.")
    missing = sorted(n for n in expected if shapes.get(n) is None)
    wrong = sorted(n for n in expected if shapes.get(n) is not None
                   and tuple(shapes[n]) != tuple(expected[n]))
    if missing:
        biases = all(n.endswith(".bias") for n in missing)
        checks.fail(f"{owner} has no {missing[0]}"
                    + (f" (nor {', '.join(missing[1:4])}{'...' if len(missing) > 4 else ''})"
                       if len(missing) > 1 else "")
                    + f"; the contract asks for {contract}",
                    hint=(missing_bias_hint if biases and missing_bias_hint else missing_hint)
                    or f"Use the contract's attribute names: {contract}.")
    if wrong:
        detail = "; ".join(f"{n} has shape {tuple(shapes[n])}, expected {tuple(expected[n])}"
                           for n in wrong[:3])
        checks.fail(f"{owner}: {detail}",
                    hint="nn.Linear(in_features, out_features) stores its weight as (out, in); "
                         "check the size arguments of each layer.")
    if changing:
        if callable(extra_hint):
            hint = extra_hint(changing)
        elif extra_hint:
            hint = extra_hint
        elif all(n.endswith("bias") for n in changing):
            hint = extra_bias_hint or hints.hint("linear_bias")
        else:
            hint = OUTSIDE_THE_CONTRACT
        checks.fail(f"{owner} has parameters outside the contract that change its output: "
                    f"{', '.join(changing[:6])}{'...' if len(changing) > 6 else ''} "
                    f"(the contract asks for {contract}; other names for these same layers are "
                    "fine, other weights are not)", hint=hint)
    return module
