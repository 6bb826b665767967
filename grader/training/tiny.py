"""A judge-provided tiny sequence-to-sequence model, and the scenarios that
drive a training step on it.

The unit tests of exercise 8 do not need the student's Transformer: they run
the student's `train_step` on `TinySeq2Seq`, which has the Transformer's
calling convention (`model(src, tgt, src_key_padding_mask=...,
tgt_key_padding_mask=...) -> logits`) and records how it was called (under
which autocast, with which masks, in which mode).  `drive` runs one scenario
with ANY train_step: inside the worker with the student's, in the judge with
the reference (grader/training/reference.py), and the two records are
compared.  Everything is built from the scenario's seed, so both sides start
from the same weights and see the same batches.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# ------------------------------------------------------------------ autocast state
def autocast_enabled(device_type: str) -> bool:
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # torch < 2.4
        if device_type == "cpu":
            return bool(torch.is_autocast_cpu_enabled())
        return bool(torch.is_autocast_enabled())


def autocast_dtype(device_type: str) -> torch.dtype:
    try:
        return torch.get_autocast_dtype(device_type)
    except (AttributeError, TypeError):  # torch < 2.4
        if device_type == "cpu":
            return torch.get_autocast_cpu_dtype()
        return torch.get_autocast_gpu_dtype()


def cpu_grad_scaler_available() -> bool:
    """torch.amp.GradScaler("cpu") exists from torch 2.3 on."""
    try:
        torch.amp.GradScaler("cpu", enabled=False)
    except (AttributeError, TypeError, RuntimeError, ValueError):
        return False
    return True


# ------------------------------------------------------------------ the model
class TinySeq2Seq(nn.Module):
    """logits[b, t] = out(tanh(mix(mean of tgt embeddings up to t + mean of the
    real (unmasked) src embeddings))), with dropout before `out`.

    It calls nothing a submission could replace, has nn.Linear layers (so
    autocast changes its numbers), a source mean that depends on the padding
    mask, and a `poison` switch that makes every logit NaN (the gradients are
    then non-finite and a GradScaler must skip the step).  Each forward call
    appends what it saw to `self.seen`.
    """

    def __init__(self, vocab: int = 7, d: int = 8, dropout: float = 0.0, pad_id: int = 0):
        super().__init__()
        self.src_embed = nn.Embedding(vocab, d)
        self.tgt_embed = nn.Embedding(vocab, d)
        self.mix = nn.Linear(d, d)
        self.out = nn.Linear(d, vocab)
        self.p = dropout
        self.pad_id = pad_id
        self.poison = False
        self.seen: list[dict] = []

    def forward(self, src, tgt, src_key_padding_mask=None, tgt_key_padding_mask=None):
        device_type = src.device.type
        self.seen.append({
            "autocast": autocast_enabled(device_type),
            "autocast_dtype": str(autocast_dtype(device_type)).removeprefix("torch."),
            "src_mask": _mask_report(src_key_padding_mask, src == self.pad_id),
            "tgt_mask": _mask_report(tgt_key_padding_mask, tgt == self.pad_id),
            "training": self.training,
            "grad_enabled": torch.is_grad_enabled(),
        })
        es = self.src_embed(src)                                          # (B, S, d)
        if src_key_padding_mask is not None:
            keep = (~src_key_padding_mask.bool()).unsqueeze(-1).to(es.dtype)
            context = (es * keep).sum(1) / keep.sum(1).clamp(min=1.0)     # (B, d)
        else:
            context = es.mean(1)
        et = self.tgt_embed(tgt)                                          # (B, T, d)
        if tgt_key_padding_mask is not None:
            et = et.masked_fill(tgt_key_padding_mask.bool().unsqueeze(-1), 0.0)
        steps = torch.arange(1, tgt.shape[1] + 1, device=tgt.device, dtype=et.dtype)
        prefix = et.cumsum(1) / steps.view(1, -1, 1)                      # causal mean
        h = torch.tanh(self.mix(prefix + context.unsqueeze(1)))
        h = F.dropout(h, self.p, self.training)
        logits = self.out(h)                                              # (B, T, V)
        if self.poison:
            logits = logits * float("nan")
        return logits


def _mask_report(mask, expected) -> str:
    """'none', 'ok' (equals input == pad_id), or 'wrong'."""
    if mask is None:
        return "none"
    if not isinstance(mask, torch.Tensor) or mask.shape != expected.shape:
        return "wrong"
    return "ok" if bool(torch.equal(mask.bool(), expected)) else "wrong"


# ------------------------------------------------------------------ scenarios
DEFAULT_SCENARIO = {
    "seed": 0,
    "vocab": 7,
    "d": 8,
    "dropout": 0.0,
    "batch": 4,
    "src_len": 5,
    "tgt_len": 5,
    "src_padding": False,   # padding in src too (tgt_out always has some)
    "pad_id": 0,            # where the batches put padding
    "steps": 4,
    "optimizer": "sgd",     # "sgd" (lr * factor) or "adam" (lr 1.0, the paper's betas/eps)
    "lr": 0.5,
    "schedule": [1.0, 0.5, 2.0, 0.25, 1.5, 0.75, 3.0, 0.3],  # LambdaLR factor at scheduler step s
    "noam": None,           # {"d_model", "warmup", "factor"}: Noam instead of `schedule`
    "scaler": {"enabled": False, "init_scale": 4096.0, "growth_interval": 1},
    "poison_steps": [],     # steps (from 1) whose forward pass yields NaN
    "no_scheduler_steps": [],  # steps called without the scheduler argument
    "mode": "train",
    "kwargs": {},           # keyword arguments of train_step (none: the defaults)
}


def scenario(**changes) -> dict:
    config = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
              for k, v in DEFAULT_SCENARIO.items()}
    for key, value in changes.items():
        if key not in config:
            raise KeyError(f"unknown scenario key {key!r}")
        if isinstance(config[key], dict) and isinstance(value, dict) and key != "kwargs":
            config[key].update(value)
        else:
            config[key] = value
    return config


def batches(config: dict) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """`steps` random batches; tgt_out always has padding (ignored by the loss),
    src only when config["src_padding"].  Real tokens are never pad_id."""
    g = torch.Generator().manual_seed(int(config["seed"]) + 1000)
    vocab, pad = int(config["vocab"]), int(config["pad_id"])
    B, S, T = int(config["batch"]), int(config["src_len"]), int(config["tgt_len"])
    out = []
    for _ in range(int(config["steps"])):
        def tokens(shape):
            t = torch.randint(0, vocab - 1, shape, generator=g)
            return t + (t >= pad).long()           # skip pad_id
        src, tgt_in, tgt_out = tokens((B, S)), tokens((B, T)), tokens((B, T))
        t_len = torch.randint(1, T + 1, (B,), generator=g)
        t_len[0] = max(1, T - 2)                     # at least one padded row
        tgt_pad = torch.arange(T)[None, :] >= t_len[:, None]
        tgt_in = tgt_in.masked_fill(tgt_pad, pad)
        tgt_out = tgt_out.masked_fill(tgt_pad, pad)
        if config["src_padding"]:
            s_len = torch.randint(1, S + 1, (B,), generator=g)
            s_len[0] = max(1, S - 2)
            src = src.masked_fill(torch.arange(S)[None, :] >= s_len[:, None], pad)
        out.append((src, tgt_in, tgt_out))
    return out


def schedule_factor(config: dict):
    noam = config.get("noam")
    if noam:
        d_model, warmup, factor = noam["d_model"], noam["warmup"], noam.get("factor", 1.0)

        def factor_at(s):
            step = max(s + 1, 1)
            return factor * d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)
        return factor_at
    table = [float(x) for x in config["schedule"]]
    return lambda s: table[s] if s < len(table) else table[-1]


def build(config: dict, *, init_seed: int | None = None):
    """(model, optimizer, scheduler, scaler), all fresh, from the config's seed."""
    torch.manual_seed(int(config["seed"]) if init_seed is None else int(init_seed))
    model = TinySeq2Seq(int(config["vocab"]), int(config["d"]), float(config["dropout"]),
                        int(config["pad_id"]))
    if config["optimizer"] == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=float(config["lr"]))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_factor(config))
    sc = config["scaler"]
    scaler = torch.amp.GradScaler("cpu", init_scale=float(sc["init_scale"]),
                                  growth_interval=int(sc["growth_interval"]),
                                  enabled=bool(sc["enabled"]))
    model.train(config["mode"] == "train")
    return model, optimizer, scheduler, scaler


def snapshot(model: nn.Module, optimizer, scheduler, scaler) -> dict:
    """What a step changed: parameters, learning rate, scale, mode."""
    return {
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
        "lr": float(optimizer.param_groups[0]["lr"]),
        "scale": float(scaler.get_scale()) if scaler.is_enabled() else 1.0,
        "training": bool(model.training),
        "modes_consistent": all(m.training == model.training for m in model.modules()),
    }


def drive(config: dict, train_step) -> dict:
    """Run `config["steps"]` calls of `train_step` and record everything."""
    model, optimizer, scheduler, scaler = build(config)
    data = batches(config)
    torch.manual_seed(int(config["seed"]) + 1)       # the dropout stream
    kwargs = dict(config["kwargs"])
    record = {"losses": [], "steps": []}
    for step, batch in enumerate(data, start=1):
        model.poison = step in config["poison_steps"]
        args = [model, batch, optimizer, scaler]
        if step not in config["no_scheduler_steps"]:
            args.append(scheduler)
        model.seen.clear()
        loss = train_step(*args, **kwargs)
        model.poison = False
        snap = snapshot(model, optimizer, scheduler, scaler)
        snap["seen"] = list(model.seen)
        record["losses"].append(loss)
        record["steps"].append(snap)
    return record


def finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
