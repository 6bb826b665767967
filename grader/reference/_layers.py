"""Calling PyTorch's Transformer layers with the contract's modules' weights.

A built-in layer is made once, on the meta device (no memory, no weights),
and called through torch.func.functional_call with the contract's
parameters under the built-in's names: W_q, W_k, W_v stacked into
`in_proj_weight`, W_o as `out_proj`, `feed_forward.linear1` as `linear1`,
`cross_attn` as `multihead_attn`.  Gradients flow back to the contract's
parameters.  The eval-mode fast path (which treats padded positions its own
way) is switched off around the call.
"""

from __future__ import annotations

import torch
from torch.func import functional_call

from grader.reference.plain import require_plain

# (the contract's attention sub-layer, the built-in's) per layer kind
SUBLAYERS = {"encoder": (("self_attn", "self_attn"),),
             "decoder": (("self_attn", "self_attn"), ("cross_attn", "multihead_attn"))}
NORMS = {"encoder": ("norm1", "norm2"), "decoder": ("norm1", "norm2", "norm3")}


def builtin_state(layer: torch.nn.Module, kind: str, prefix: str = "") -> dict:
    """A contract EncoderLayer / DecoderLayer's parameters under the names of
    nn.TransformerEncoderLayer / nn.TransformerDecoderLayer (plus `prefix`)."""
    out = {}
    for ours, theirs in SUBLAYERS[kind]:
        attn = getattr(layer, ours)
        out[f"{prefix}{theirs}.in_proj_weight"] = torch.cat(
            [attn.W_q.weight, attn.W_k.weight, attn.W_v.weight])
        out[f"{prefix}{theirs}.in_proj_bias"] = torch.cat(
            [attn.W_q.bias, attn.W_k.bias, attn.W_v.bias])
        out[f"{prefix}{theirs}.out_proj.weight"] = attn.W_o.weight
        out[f"{prefix}{theirs}.out_proj.bias"] = attn.W_o.bias
    for i in (1, 2):
        linear = getattr(layer.feed_forward, f"linear{i}")
        out[f"{prefix}linear{i}.weight"] = linear.weight
        out[f"{prefix}linear{i}.bias"] = linear.bias
    for norm in NORMS[kind]:
        out[f"{prefix}{norm}.weight"] = getattr(layer, norm).weight
        out[f"{prefix}{norm}.bias"] = getattr(layer, norm).bias
    return out


def call_builtin(builtin: torch.nn.Module, state: dict, training: bool, *args, **kwargs):
    """builtin(*args, **kwargs) with `state` as its parameters, in the given mode."""
    require_plain(*args, *kwargs.values(), *state.values())
    builtin.train(training)
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        return functional_call(builtin, state, args, kwargs)
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)


def unregistered(module: torch.nn.Module, name: str, value: torch.nn.Module) -> None:
    """Keep `value` on `module` outside its submodules (no parameters, no
    state-dict entries, untouched by .to()): the meta-device template."""
    object.__setattr__(module, name, value)
