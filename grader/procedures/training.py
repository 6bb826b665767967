"""Trusted procedures of exercise 8, run inside the worker next to student code.

They build the objects (a judge-provided tiny model, optimizers, scalers,
the student's Transformer for the timed check), call the student's functions
in the order a scenario asks, and return what happened: losses as returned,
parameters, learning rates, scales, modes, trained weights.  They run next
to student code, so they are untrusted: the judge recomputes what should
have happened and decides (the timed check's accuracy is measured in the
judge, on its own model); nothing here judges.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile

import torch

from grader.training import tiny

MODULE = "ex08_training"


def _student(worker, name: str):
    return worker.target({"module": MODULE, "path": name})


def _scratch(worker) -> str:
    return tempfile.mkdtemp(prefix="ckpt-", dir=worker.staging or None)


# ------------------------------------------------------------------ train_step
def train_steps(worker, config: dict) -> dict:
    """Run a tiny-model scenario (tiny.drive) with the student's train_step."""
    return tiny.drive(config, _student(worker, "train_step"))


# ------------------------------------------------------------------ make_optimizer
def optimizer_steps(worker, d_model, warmup, factor, grads: list[dict], *, seed: int = 0) -> dict:
    """The student's make_optimizer on a float64 tiny model; then, for each
    entry of `grads` ({parameter name: gradient}), set the gradients,
    optimizer.step(), scheduler.step().  Records the learning rate before the
    first step and after each scheduler step, and the parameters after each step."""
    torch.manual_seed(seed)
    model = tiny.TinySeq2Seq().double()
    made = _student(worker, "make_optimizer")(model, d_model, warmup, factor)
    record = {"returned": type(made).__name__, "lrs": [], "params": [], "groups": {}}
    if not isinstance(made, (tuple, list)) or len(made) != 2:
        record["returned"] = f"{type(made).__name__} of length {len(made) if hasattr(made, '__len__') else '?'}"
        return record
    optimizer, scheduler = made
    record["returned"] = "pair"
    record["optimizer_type"] = type(optimizer).__name__
    record["scheduler_type"] = type(scheduler).__name__
    group = optimizer.param_groups[0]
    record["groups"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()
                        if k in ("betas", "eps", "weight_decay", "initial_lr", "amsgrad")}
    record["n_params_optimized"] = sum(len(g["params"]) for g in optimizer.param_groups)
    record["n_params"] = len(list(model.parameters()))
    record["lrs"].append(float(optimizer.param_groups[0]["lr"]))
    params = dict(model.named_parameters())
    for step_grads in grads:
        for name, g in step_grads.items():
            params[name].grad = g.to(params[name].dtype).clone()
        optimizer.step()
        scheduler.step()
        record["lrs"].append(float(optimizer.param_groups[0]["lr"]))
        record["params"].append({n: p.detach().clone() for n, p in model.named_parameters()})
    return record


# ------------------------------------------------------------------ checkpoints
def _rng_bytes() -> torch.Tensor:
    return torch.get_rng_state().clone()


def _optimizer_moments(optimizer) -> dict:
    out = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                out[f"{index}.{key}"] = value.detach().clone().reshape(-1).to(torch.float64)
    return out


def _scaler_state(scaler) -> dict:
    state = scaler.state_dict()
    return {"scale": float(state.get("scale", 0.0)),
            "growth_tracker": int(state.get("_growth_tracker", -1))}


def _state(model, optimizer, scheduler, scaler) -> dict:
    return {
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
        "moments": _optimizer_moments(optimizer),
        "lr": float(optimizer.param_groups[0]["lr"]),
        "scheduler_step": int(getattr(scheduler, "last_epoch", -1)),
        "scaler": _scaler_state(scaler),
        "rng": _rng_bytes(),
    }


def checkpoint_resume(worker, config: dict, n: int) -> dict:
    """2n uninterrupted steps, against n steps + save_checkpoint + a "new
    process" (other random state, fresh objects with other weights) +
    load_checkpoint + n steps.  Uses the student's train_step throughout."""
    step = _student(worker, "train_step")
    save = _student(worker, "save_checkpoint")
    load = _student(worker, "load_checkpoint")
    kwargs = dict(config["kwargs"])
    config = dict(config, steps=2 * n)
    data = tiny.batches(config)
    folder = _scratch(worker)
    path = os.path.join(folder, "checkpoint.pt")
    try:
        # 1. Uninterrupted.
        model, opt, sched, scaler = tiny.build(config)
        torch.manual_seed(int(config["seed"]) + 1)
        random.seed(int(config["seed"]) + 1)
        for batch in data:
            step(model, batch, opt, scaler, sched, **kwargs)
        straight = _state(model, opt, sched, scaler)

        # 2. Interrupted after n steps.
        model, opt, sched, scaler = tiny.build(config)
        torch.manual_seed(int(config["seed"]) + 1)
        random.seed(int(config["seed"]) + 1)
        for batch in data[:n]:
            step(model, batch, opt, scaler, sched, **kwargs)
        saved = _state(model, opt, sched, scaler)
        save(path, model=model, optimizer=opt, scheduler=sched, scaler=scaler, step=n)
        saved_file = os.path.exists(path) or bool(os.listdir(folder))
        del model, opt, sched, scaler

        # 3. A new process: other random state, fresh objects, other weights.
        torch.manual_seed(int(config["seed"]) + 777)
        random.seed(int(config["seed"]) + 777)
        model, opt, sched, scaler = tiny.build(config, init_seed=int(config["seed"]) + 555)
        torch.rand(17)
        returned = load(path, model=model, optimizer=opt, scheduler=sched, scaler=scaler)
        loaded = _state(model, opt, sched, scaler)
        loaded["training"] = bool(model.training)
        for batch in data[n:]:
            step(model, batch, opt, scaler, sched, **kwargs)
        resumed = _state(model, opt, sched, scaler)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not isinstance(returned, (int, float, str, type(None), torch.Tensor)):
        returned = f"<{type(returned).__name__}>"
    return {"straight": straight, "saved": saved, "loaded": loaded, "resumed": resumed,
            "returned": returned, "saved_file": saved_file}


# ------------------------------------------------------------------ train
def train_run(worker, config: dict, *, steps: int, start_step: int, checkpoint_every: int) -> dict:
    """The student's train(...) on a list of batches, with checkpoints, next to
    the same steps made one by one with the student's train_step."""
    train = _student(worker, "train")
    step = _student(worker, "train_step")
    load = _student(worker, "load_checkpoint")
    kwargs = dict(config["kwargs"])
    config = dict(config, steps=steps)
    data = tiny.batches(config)
    folder = _scratch(worker)
    path = os.path.join(folder, "train.pt")
    try:
        # 1. One by one.
        model, opt, sched, scaler = tiny.build(config)
        torch.manual_seed(int(config["seed"]) + 1)
        one_by_one = {"losses": [], "params": []}
        for batch in data:
            one_by_one["losses"].append(step(model, batch, opt, scaler, sched, **kwargs))
            one_by_one["params"].append({n: p.detach().clone() for n, p in model.named_parameters()})
        one_by_one["lr_final"] = float(opt.param_groups[0]["lr"])

        # 2. train(), checkpointing, on a list (a re-iterable) that counts the batches drawn.
        model, opt, sched, scaler = tiny.build(config)
        torch.manual_seed(int(config["seed"]) + 1)
        counted = _CountingList(data)
        losses = train(model, counted, steps=steps, optimizer=opt, scheduler=sched, scaler=scaler,
                       checkpoint_path=path, checkpoint_every=checkpoint_every,
                       start_step=start_step, **kwargs)
        lr_final = float(opt.param_groups[0]["lr"])
        final = {n: p.detach().clone() for n, p in model.named_parameters()}
        checkpoint = {"exists": os.path.exists(path)}
        if checkpoint["exists"]:
            fresh = tiny.build(config, init_seed=int(config["seed"]) + 555)
            checkpoint["step"] = load(path, model=fresh[0], optimizer=fresh[1], scheduler=fresh[2],
                                      scaler=fresh[3])
            checkpoint["params"] = {n: p.detach().clone() for n, p in fresh[0].named_parameters()}

        # 3. No checkpoint when checkpoint_every is 0 or checkpoint_path is None.
        never = os.path.join(folder, "never.pt")
        model, opt, sched, scaler = tiny.build(config)
        train(model, list(data), steps=2, optimizer=opt, scheduler=sched, scaler=scaler,
              checkpoint_path=never, checkpoint_every=0, start_step=0, **kwargs)
        model, opt, sched, scaler = tiny.build(config)
        before = set(os.listdir(folder))
        train(model, list(data), steps=2, optimizer=opt, scheduler=sched, scaler=scaler,
              checkpoint_path=None, checkpoint_every=1, start_step=0, **kwargs)
        after = set(os.listdir(folder))
        unexpected = sorted((after - before) | ({"never.pt"} & after))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not isinstance(losses, (list, tuple)):
        losses = f"<{type(losses).__name__}>"
    if not isinstance(checkpoint.get("step"), (int, float, str, type(None), torch.Tensor)):
        checkpoint["step"] = f"<{type(checkpoint['step']).__name__}>"
    return {"losses": losses, "final": final, "one_by_one": one_by_one, "checkpoint": checkpoint,
            "unexpected_files": unexpected, "lr_final": lr_final,
            "batches_used": counted.distinct()}


class _CountingList(list):
    """A list of batches that remembers which of them were handed out."""

    def __init__(self, items):
        super().__init__(items)
        self.seen: set[int] = set()

    def __iter__(self):
        for index in range(len(self)):
            self.seen.add(index)
            yield list.__getitem__(self, index)

    def __getitem__(self, index):
        if isinstance(index, int):
            self.seen.add(index % len(self))
        return list.__getitem__(self, index)

    def distinct(self) -> int:
        return len(self.seen)


# ------------------------------------------------------------------ the timed check
def check_setup(worker, spec: dict) -> dict:
    """Build the student's Transformer (exercise 7) with the check's size,
    initialise it with the one fixed recipe, make the optimizer with the
    student's make_optimizer, and a GradScaler.  Returns handles."""
    from grader.training.check import initialise

    device = torch.device(spec["device"])
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))  # the worker puts it back for the next test
    Transformer = worker.target({"module": "ex07_transformer", "path": "Transformer"})
    m = spec["model"]
    model = Transformer(m["vocab"], m["vocab"], m["d_model"], m["num_heads"], m["num_layers"],
                        m["d_ff"], m["dropout"], m["max_len"])
    initialise(model, int(spec["seed"]))
    model.to(device)
    model.train()
    made = _student(worker, "make_optimizer")(model, m["d_model"], spec["warmup"], spec["factor"])
    optimizer, scheduler = made
    scaler = torch.amp.GradScaler(device.type, enabled=bool(spec["scaler"]))
    torch.manual_seed(int(spec["seed"]) + 1)
    return {"model": model, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler,
            "parameters": sum(p.numel() for p in model.parameters())}


def check_train(worker, objects: dict, batches: list, *, steps: int, start_step: int,
                amp_dtype, pad_id: int, label_smoothing: float, max_grad_norm: float):
    """One chunk: the student's train(...) on batches sent by the judge."""
    model = objects["model"]
    device = next(model.parameters()).device
    on_device = [tuple(t.to(device, non_blocking=True) for t in b) for b in batches]
    model.train()
    losses = _student(worker, "train")(
        model, iter(on_device), steps=steps, optimizer=objects["optimizer"],
        scheduler=objects["scheduler"], scaler=objects["scaler"], max_grad_norm=max_grad_norm,
        amp_dtype=amp_dtype, pad_id=pad_id, label_smoothing=label_smoothing,
        start_step=start_step)
    if device.type == "cuda":
        torch.cuda.synchronize()
    if isinstance(losses, (list, tuple)):
        return [float(x) if tiny.finite(x) else float("nan") for x in losses][-steps:]
    return None


def check_weights(worker, objects: dict) -> dict:
    """The trained weights, tensors only, by name (the model's state_dict,
    on the CPU, in float32): the judge loads the contract's names into its
    own Transformer and measures the accuracy itself."""
    state = objects["model"].state_dict()
    return {name: value.detach().to("cpu", torch.float32).clone() for name, value in state.items()
            if isinstance(value, torch.Tensor) and value.is_floating_point()}
