"""Exercise 8 · the AMP training loop.

Oracles, all the judge's own (grader/training/reference.py):
- noam_lr: the paper's schedule, factor * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5);
- label_smoothed_cross_entropy: F.cross_entropy(..., label_smoothing=eps,
  ignore_index=...), in float64;
- make_optimizer: torch.optim.Adam(lr=1, betas=(0.9, 0.98), eps=1e-9) and a
  LambdaLR at noam_lr(s + 1), fed the very same gradients;
- train_step / checkpoints / train: the contract's step (zero_grad, autocast
  forward, loss ignoring padding, scaled backward, unscale_, clip, scaler.step,
  scaler.update, scheduler.step) run by the judge on a judge-provided tiny
  model (grader/training/tiny.py) from the same weights and batches.  The
  student's functions drive the same scenario in the worker; the records
  (losses, parameters, learning rates, scales, modes) are compared.
- the timed training check (grader/training/check.py): the student's loop
  trains the student's Transformer on a synthetic task; the judge measures
  held-out accuracy and time.

Each property names the mistake it is there to catch.  The scenarios run on
the CPU with torch.amp.GradScaler("cpu"), enabled and disabled: an enabled
scaler reveals clipping before unscale_, a missing update() and a returned
scaled loss; a disabled one keeps the numbers exact for the rest.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from grader import hints
from grader.hidden import checks
from grader.hidden import strategies as S
from grader.outcomes import NotRun, StudentAbort, StudentError
from grader.sandbox.client import run_procedure
from grader.training import check as training_check
from grader.training import reference, tiny

LOSS_TOL = (1e-5, 1e-5)     # (atol, rtol) for a float32 loss
PARAM_TOL = (1e-5, 1e-4)    # for float32 parameters after a few steps
NOAM_RTOL = 1e-6            # a rate computed in float32 is still right
ADAM_TOL = (1e-8, 1e-6)     # float64 parameters after 30 Adam steps


@pytest.fixture(scope="module", autouse=True)
def _warm_up():
    """The first optimizer step of a process imports torch._dynamo (seconds):
    start it now in the judge, while the first tests run.  Workers need no
    such step: they are forked from a zygote that already imported it
    (registry.Exercise.warm_start)."""
    from grader.training import preload_optimizer_imports

    preload_optimizer_imports()


def _need_cpu_grad_scaler():
    if not tiny.cpu_grad_scaler_available():
        raise NotRun(f"needs torch >= 2.3 for torch.amp.GradScaler('cpu') (this is torch "
                     f"{torch.__version__}); not run, not awarded")


def _number(value, what: str) -> float:
    """A returned loss or rate as a float (a one-element tensor is accepted)."""
    if isinstance(value, bool) or value is None:
        checks.fail(f"{what}: expected a number, got {value!r}",
                    hint="Return a Python float (loss.item()).")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.reshape(()).item())
    checks.fail(f"{what}: expected a number, got {type(value).__name__}",
                hint="Return a Python float (loss.item()).")


def _same_number(a: float, b: float, atol: float, rtol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= atol + rtol * abs(b)


def _tensors_close(a, b, atol: float, rtol: float) -> bool:
    if not isinstance(a, torch.Tensor) or a.shape != b.shape:
        return False
    return bool(torch.allclose(a.double(), b.double(), atol=atol, rtol=rtol, equal_nan=True))


# ==================================================================== noam_lr
@given(case=S.noam_cases())
def test_noam_lr_matches_the_formula(student, case):
    """noam_lr(step, d_model, warmup, factor) = factor * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)."""
    for step in case.steps:
        args = (step, case.d_model, case.warmup) + (() if case.factor is None else (case.factor,))
        got = _number(student.noam_lr(*args), f"noam_lr{args}")
        factor = 1.0 if case.factor is None else case.factor
        want = reference.noam_lr(step, case.d_model, case.warmup, factor)
        if not _same_number(got, want, 0.0, NOAM_RTOL):
            candidates = reference.noam_mistakes(step, case.d_model, case.warmup, factor)
            found = next((k for k, v in candidates.items() if _same_number(got, v, 0.0, NOAM_RTOL)), "")
            checks.fail(f"noam_lr{args} = {got!r}, expected {want!r}",
                        hint=hints.MISTAKES.get(found, "lr = factor * d_model^-0.5 * "
                                                       "min(step^-0.5, step * warmup^-1.5)."))


@given(case=S.noam_cases())
def test_noam_lr_peaks_at_warmup(student, case):
    """the rate peaks exactly at step == warmup, at factor * (d_model * warmup)^-0.5; a step below 1 counts as 1."""
    factor = 1.0 if case.factor is None else case.factor
    extra = () if case.factor is None else (case.factor,)

    def lr(step):
        return _number(student.noam_lr(step, case.d_model, case.warmup, *extra),
                       f"noam_lr({step}, {case.d_model}, {case.warmup}{', ' + repr(factor) if extra else ''})")

    peak = lr(case.warmup)
    expected = factor * (case.d_model * case.warmup) ** -0.5
    checks.assert_true(_same_number(peak, expected, 0.0, NOAM_RTOL),
                       f"at step == warmup == {case.warmup} the rate is {peak!r}, expected "
                       f"factor * (d_model * warmup)^-0.5 = {expected!r}",
                       hint=hints.MISTAKES["noam_warmup_power"])
    if case.warmup > 1:
        checks.assert_true(lr(case.warmup - 1) < peak, f"the rate at step warmup - 1 = {case.warmup - 1} "
                           "is not below the peak at step warmup: it must rise during warm-up",
                           hint=hints.MISTAKES["noam_max"])
    checks.assert_true(lr(case.warmup + 1) < peak, f"the rate at step warmup + 1 = {case.warmup + 1} "
                       "is not below the peak at step warmup: it must decay after warm-up",
                       hint=hints.MISTAKES["noam_max"])
    first = lr(1)
    for below in (0, -3):
        try:
            value = student.noam_lr(below, case.d_model, case.warmup, *extra)
        except StudentError as exc:
            checks.fail(f"noam_lr({below}, ...) raised {exc.type_name}: {exc.message}",
                        hint=hints.MISTAKES["noam_step_below_one"])
        got = _number(value, f"noam_lr({below}, ...)")
        checks.assert_true(_same_number(got, first, 0.0, NOAM_RTOL),
                           f"noam_lr({below}, ...) = {got!r}, but a step below 1 counts as 1: "
                           f"noam_lr(1, ...) = {first!r}", hint=hints.MISTAKES["noam_step_below_one"])


# ==================================================================== the loss
def _loss_reference(case: S.LossCase, logits, target):
    return torch.nn.functional.cross_entropy(
        logits.to(torch.float64).reshape(-1, case.vocab), target.reshape(-1),
        label_smoothing=case.effective_eps, ignore_index=case.effective_ignore)


@pytest.mark.weight(2)
@given(case=S.loss_cases())
def test_label_smoothing_equals_torch_cross_entropy(student, case):
    """equals F.cross_entropy(logits.reshape(-1, V), target.reshape(-1), label_smoothing=eps, ignore_index=...), 2-D and 3-D, eps in [0, 0.5], random padding."""
    logits, target = case.tensors()
    got = checks.require_tensor(student.label_smoothed_cross_entropy(logits, target, **case.kwargs()),
                                "label_smoothed_cross_entropy")
    if got.numel() == 1:
        got = got.reshape(())
    want = _loss_reference(case, logits, target)
    checks.assert_close(got, want, "the loss", candidates=lambda: reference.loss_mistakes(
        logits, target, case.effective_eps, case.effective_ignore))


@S.examples(6)
@given(case=S.loss_cases(dtype=torch.float64))
def test_label_smoothing_gradient(ctx, student, case):
    """the loss is differentiable and its gradient with respect to the logits equals F.cross_entropy's."""
    logits, target = case.tensors()
    kwargs = case.kwargs()
    args = [logits, target, kwargs.get("eps", 0.1), kwargs.get("ignore_index", -100)]
    try:
        _, grads, _ = run_procedure(ctx.client, "common:gradients",
                                    "ex08_training:label_smoothed_cross_entropy", args)
    except StudentError as exc:
        if "does not require grad" in exc.message or "grad_fn" in exc.message:
            checks.fail(f"the loss cannot be back-propagated: {exc.message}",
                        hint=hints.MISTAKES["ls_detached"])
        raise
    checks.assert_true(grads[0] is not None, "no gradient reaches the logits",
                       hint=hints.MISTAKES["ls_detached"])
    x = logits.clone().requires_grad_(True)
    out = _loss_reference(case, x, target)
    projection = torch.randn(out.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    (out * projection).sum().backward()
    checks.assert_close(grads[0], x.grad, "the gradient of the loss with respect to the logits",
                        hint=hints.MISTAKES["ls_detached"] if not bool(grads[0].abs().sum()) else "")


# ==================================================================== make_optimizer
def _gradient_plan(seed: int, steps: int) -> list[dict]:
    """Gradients per step: random signs and sizes, some tiny (they reveal Adam's
    eps), varying from step to step (they reveal the betas)."""
    model = tiny.TinySeq2Seq().double()
    g = torch.Generator().manual_seed(seed)
    scales = {}
    for i, (name, p) in enumerate(model.named_parameters()):
        scales[name] = (1.0, 1e-3, 1e-9, 3e-9)[i % 4]
    plan = []
    for s in range(steps):
        plan.append({name: torch.randn(p.shape, generator=g, dtype=torch.float64) * scales[name]
                     * (1.0 + 2.0 * (s % 3)) for name, p in model.named_parameters()})
    return plan


def _optimizer_reference(d_model, warmup, factor, plan, *, seed=0, betas=(0.9, 0.98), eps=1e-9,
                         offset=1, factor_used=None, base_lr=1.0):
    torch.manual_seed(seed)
    model = tiny.TinySeq2Seq().double()
    optimizer = torch.optim.Adam(model.parameters(), lr=base_lr, betas=betas, eps=eps)
    f = factor if factor_used is None else factor_used
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: reference.noam_lr(s + offset, d_model, warmup, f))
    lrs = [optimizer.param_groups[0]["lr"]]
    params = []
    named = dict(model.named_parameters())
    for grads in plan:
        for name, g in grads.items():
            named[name].grad = g.clone()
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
        params.append({n: p.detach().clone() for n, p in model.named_parameters()})
    return {"lrs": lrs, "params": params}


@pytest.mark.weight(2)
@S.examples(4)
@given(d_model=st.sampled_from((16, 64, 512)), warmup=st.integers(2, 20),
       factor=st.sampled_from((1.0, 2.0, 0.5)), seed=S.seeds())
def test_make_optimizer_is_adam_with_the_papers_settings(ctx, student, d_model, warmup, factor, seed):
    """Adam(lr=1.0, betas=(0.9, 0.98), eps=1e-9) and a LambdaLR whose rate at scheduler step s is noam_lr(s + 1), over 30 steps."""
    steps = 30
    plan = _gradient_plan(seed, steps)
    got = run_procedure(ctx.client, "training:optimizer_steps", d_model, warmup, factor, plan, seed=seed)
    if got["returned"] != "pair":
        checks.fail(f"make_optimizer must return (optimizer, scheduler); it returned a {got['returned']}")
    checks.assert_true(got["n_params_optimized"] == got["n_params"],
                       f"the optimizer holds {got['n_params_optimized']} of the model's "
                       f"{got['n_params']} parameters", hint="Pass model.parameters() to Adam.")
    want = _optimizer_reference(d_model, warmup, factor, plan, seed=seed)

    def diagnose_lr():
        for key, kwargs in (("sched_off_by_one", {"offset": 0}),
                            ("sched_factor_ignored", {"factor_used": 1.0})):
            alt = _optimizer_reference(d_model, warmup, factor, plan, seed=seed, **kwargs)
            if all(_same_number(a, b, 0.0, NOAM_RTOL) for a, b in zip(got["lrs"], alt["lrs"])):
                return hints.MISTAKES[key]
        if got["lrs"] and want["lrs"] and got["lrs"][0] and want["lrs"][0]:
            ratio = [a / b for a, b in zip(got["lrs"], want["lrs"]) if b]
            if ratio and all(_same_number(r, ratio[0], 0.0, NOAM_RTOL) for r in ratio):
                return hints.MISTAKES["adam_base_lr"]
        return "At scheduler step s the rate is noam_lr(s + 1, d_model, warmup, factor), with base lr 1.0."

    for s, (a, b) in enumerate(zip(got["lrs"], want["lrs"])):
        if not _same_number(a, b, 0.0, NOAM_RTOL):
            checks.fail(f"the learning rate after {s} scheduler steps is {a!r}, expected "
                        f"noam_lr({s + 1}, {d_model}, {warmup}, {factor}) = {b!r}", hint=diagnose_lr())

    def diagnose_adam():
        groups = got.get("groups", {})
        if got.get("optimizer_type") not in ("Adam",) or groups.get("weight_decay") or groups.get("amsgrad"):
            return hints.MISTAKES["adam_not_adam"]
        betas = tuple(groups.get("betas", ()))
        if betas and not (_same_number(betas[0], 0.9, 0, 1e-12) and _same_number(betas[1], 0.98, 0, 1e-12)):
            return hints.MISTAKES["adam_betas"]
        if "eps" in groups and not _same_number(float(groups["eps"]), 1e-9, 0, 1e-12):
            return hints.MISTAKES["adam_eps"]
        return "Adam with betas=(0.9, 0.98) and eps=1e-9, as in section 5.3 of the paper."

    for s, (a, b) in enumerate(zip(got["params"], want["params"]), start=1):
        for name, ref in b.items():
            if not _tensors_close(a.get(name), ref, *ADAM_TOL):
                checks.assert_close(a.get(name), ref, f"parameter {name} after {s} optimizer steps "
                                    "(the same gradients fed to your optimizer and to the paper's Adam)",
                                    atol=ADAM_TOL[0], rtol=ADAM_TOL[1], hint=diagnose_adam())


# ==================================================================== train_step
def _run_student(ctx, config: dict) -> dict:
    return run_procedure(ctx.client, "training:train_steps", config)


def _run_reference(config: dict, mistake: str | None = None) -> dict:
    step = functools.partial(reference.train_step, mistake=mistake) if mistake else reference.train_step
    return tiny.drive(config, step)


def _matches(got: dict, want: dict, *, tight: bool = False) -> bool:
    """The whole record agrees (losses and parameters at every step); loosely
    for naming a mistake, within the test's tolerances when `tight`."""
    loss_tol, param_tol = (LOSS_TOL, PARAM_TOL) if tight else ((1e-4, 1e-4), (1e-4, 1e-3))
    if len(got["steps"]) != len(want["steps"]):
        return False
    for g_loss, w_loss, g, w in zip(got["losses"], want["losses"], got["steps"], want["steps"]):
        try:
            value = _number(g_loss, "loss")
        except AssertionError:
            return False
        if not _same_number(value, w_loss, *loss_tol):
            return False
        if not all(_tensors_close(g["params"].get(n), p, *param_tol) for n, p in w["params"].items()):
            return False
    return True


def _diagnose_step(got: dict, config: dict, keys=reference.TRAIN_STEP_MISTAKES) -> str:
    for key in keys:
        try:
            alt = _run_reference(config, key)
        except Exception:  # noqa: BLE001 - a mistake the reference cannot make here
            continue
        if _matches(got, alt):
            return hints.MISTAKES[key]
    return ""


def _compare_steps(got: dict, want: dict, config: dict, *, check_scale: bool = True) -> None:
    """The first step where the submission's record departs from the reference fails.

    A record that matches an accepted variant of the reference (e.g. not
    stepping the scheduler when the GradScaler skipped the step) passes."""
    for variant in reference.TRAIN_STEP_VARIANTS:
        if config["poison_steps"] and config["scaler"]["enabled"]:
            alt = _run_reference(config, variant)
            if _matches(got, alt, tight=True) and all(
                    _same_number(g["scale"], w["scale"], 0.0, 0.0) and _same_number(g["lr"], w["lr"], 0.0, 1e-9)
                    for g, w in zip(got["steps"], alt["steps"])):
                return
    diagnosis = functools.lru_cache(maxsize=1)(lambda: _diagnose_step(got, config))
    for i, (g_loss, w_loss, g, w) in enumerate(zip(got["losses"], want["losses"], got["steps"],
                                                   want["steps"]), start=1):
        loss = _number(g_loss, f"the value train_step returned at step {i}")
        if not _same_number(loss, w_loss, *LOSS_TOL):
            checks.fail(f"step {i}: train_step returned the loss {loss:.7g}, expected {w_loss:.7g} "
                        f"(the label-smoothed loss, eps={config['kwargs'].get('label_smoothing', 0.1)}, "
                        f"ignoring pad_id={config['kwargs'].get('pad_id', 0)}, before any scaling)",
                        hint=diagnosis() or "Compute label_smoothed_cross_entropy(logits, tgt_out, "
                                            "label_smoothing, ignore_index=pad_id) and return loss.item().")
        for name, ref in w["params"].items():
            mine = g["params"].get(name)
            if not _tensors_close(mine, ref, *PARAM_TOL):
                checks.assert_close(mine, ref, f"parameter {name} after step {i}", atol=PARAM_TOL[0],
                                    rtol=PARAM_TOL[1],
                                    hint=diagnosis() or "Follow the order: zero_grad, forward, loss, "
                                    "scaler.scale(loss).backward(), scaler.unscale_(optimizer), clip, "
                                    "scaler.step(optimizer), scaler.update(), scheduler.step().")
        if not _same_number(g["lr"], w["lr"], 0.0, 1e-9):
            checks.fail(f"after step {i} the learning rate is {g['lr']!r}, expected {w['lr']!r}",
                        hint=diagnosis() or hints.MISTAKES["scheduler_before_optimizer"])
        if check_scale and not _same_number(g["scale"], w["scale"], 0.0, 0.0):
            checks.fail(f"after step {i} the GradScaler's scale is {g['scale']:g}, expected {w['scale']:g}",
                        hint=hints.MISTAKES["no_scaler_update"])


@pytest.mark.weight(2)
def test_train_step_follows_the_order(ctx, student):
    """zero_grad, forward, loss (label smoothing, padding ignored), backward, clip to max_grad_norm, step, scheduler: 4 steps against the reference (scaler disabled)."""
    _need_cpu_grad_scaler()
    config = tiny.scenario(seed=11, steps=4, no_scheduler_steps=[4],
                           kwargs={"max_grad_norm": 0.05, "label_smoothing": 0.2, "pad_id": 0,
                                   "amp_dtype": None})
    got = _run_student(ctx, config)
    _compare_steps(got, _run_reference(config), config)


@pytest.mark.weight(2)
def test_train_step_with_an_enabled_grad_scaler(ctx, student):
    """with an enabled GradScaler: the returned loss is unscaled, clipping sees unscaled gradients, a step with NaN gradients is skipped and the scale halves, scaler.update() runs every step."""
    _need_cpu_grad_scaler()
    config = tiny.scenario(seed=23, steps=5, poison_steps=[3],
                           scaler={"enabled": True, "init_scale": 4096.0, "growth_interval": 1})
    try:
        got = _run_student(ctx, config)
    except StudentError as exc:
        # GradScaler refuses a second unscale_/step without an update() in between.
        if any(s in exc.message for s in ("since the last update", "unscale_() is being called after",
                                          "step() has already been called")):
            exc.message += "\n(hint: " + hints.MISTAKES["no_scaler_update"] + ")"
        raise
    _compare_steps(got, _run_reference(config), config)


def test_train_step_leaves_the_model_mode_alone(ctx, student):
    """train_step neither calls model.train() nor model.eval(): the caller sets the mode."""
    _need_cpu_grad_scaler()
    for mode in ("eval", "train"):
        config = tiny.scenario(seed=5, steps=2, mode=mode)
        got = _run_student(ctx, config)
        for i, step in enumerate(got["steps"], start=1):
            seen = [s["training"] for s in step["seen"]]
            expected = mode == "train"
            checks.assert_true(step["training"] == expected and step["modes_consistent"]
                               and all(t == expected for t in seen),
                               f"the model was in {mode}() mode before train_step; at step {i} the "
                               f"forward pass saw training={seen} and afterwards "
                               f"training={step['training']}",
                               hint=hints.MISTAKES["mode_changed"])


def test_train_step_autocast(ctx, student):
    """the forward pass runs under torch.autocast on the model's device with amp_dtype, and without autocast when amp_dtype is None."""
    _need_cpu_grad_scaler()
    for amp_dtype in (torch.bfloat16, None):
        config = tiny.scenario(seed=31, steps=2, kwargs={"amp_dtype": amp_dtype})
        got = _run_student(ctx, config)
        for i, step in enumerate(got["steps"], start=1):
            checks.assert_true(len(step["seen"]) >= 1, f"step {i}: the model was never called",
                               hint="Call model(src, tgt_in, ...) inside train_step.")
            seen = step["seen"][0]
            if amp_dtype is None:
                checks.assert_true(not seen["autocast"],
                                   f"amp_dtype=None, yet the forward pass ran under autocast "
                                   f"({seen['autocast_dtype']})", hint=hints.MISTAKES["autocast_always_on"])
            else:
                want = str(amp_dtype).removeprefix("torch.")
                checks.assert_true(seen["autocast"],
                                   f"amp_dtype={want} on a CPU model, yet the forward pass did not run "
                                   "under CPU autocast", hint=hints.MISTAKES["autocast_device"])
                checks.assert_true(seen["autocast_dtype"] == want,
                                   f"the forward pass ran under autocast with {seen['autocast_dtype']}, "
                                   f"expected {want}", hint=hints.MISTAKES["autocast_dtype"])
        want = _run_reference(config)
        for i, (g, w) in enumerate(zip(got["losses"], want["losses"]), start=1):
            value = _number(g, f"the value train_step returned at step {i}")
            tol = 2e-2 if amp_dtype is not None else LOSS_TOL[1]
            checks.assert_true(_same_number(value, w, tol, tol),
                               f"step {i} (amp_dtype={amp_dtype}): train_step returned the loss "
                               f"{value:.6g}, expected {w:.6g}",
                               hint="Compute the loss from the logits of the autocast forward pass "
                                    "(in float32: logits.float()), and return loss.item().")


def test_train_step_masks_padding(ctx, student):
    """the padding (pad_id, here 3) is masked in the source and ignored by the loss: src_key_padding_mask=(src == pad_id)."""
    _need_cpu_grad_scaler()
    config = tiny.scenario(seed=47, steps=3, src_padding=True, pad_id=3,
                           kwargs={"pad_id": 3, "max_grad_norm": 0.5})
    got = _run_student(ctx, config)
    masks = [s["src_mask"] for step in got["steps"] for s in step["seen"]]
    if any(m != "ok" for m in masks):
        bad = next(m for m in masks if m != "ok")
        checks.fail("the forward pass got " + ("no src_key_padding_mask" if bad == "none" else
                    "a src_key_padding_mask that is not (src == pad_id)") + " (pad_id=3 here)",
                    hint=hints.MISTAKES["no_padding_masks"] if bad == "none" else
                    "The mask is True AT padding: src_key_padding_mask = (src == pad_id), with the "
                    "pad_id argument (not a fixed 0).")
    tgt_masks = [s["tgt_mask"] for step in got["steps"] for s in step["seen"]]
    checks.assert_true(all(m in ("ok", "none") for m in tgt_masks),
                       "the forward pass got a tgt_key_padding_mask that is not (tgt_in == pad_id)",
                       hint="tgt_key_padding_mask = (tgt_in == pad_id): True at padding.")
    _compare_steps(got, _run_reference(config), config)


# ==================================================================== checkpoints
@pytest.mark.weight(2)
def test_checkpoint_resume_is_bit_identical(ctx, student):
    """N steps, save_checkpoint, load_checkpoint into fresh objects, N more steps == 2N steps in a row, bit for bit, dropout on; the scaler's scale survives."""
    _need_cpu_grad_scaler()
    n = 3
    config = tiny.scenario(seed=59, dropout=0.3, optimizer="adam",
                           noam={"d_model": 8, "warmup": 3, "factor": 1.0},
                           scaler={"enabled": True, "init_scale": 1024.0, "growth_interval": 2},
                           kwargs={"max_grad_norm": 1.0})
    got = run_procedure(ctx.client, "training:checkpoint_resume", config, n, timeout=30)
    saved, loaded, resumed, straight = got["saved"], got["loaded"], got["resumed"], got["straight"]
    checks.assert_true(got["saved_file"], "save_checkpoint wrote nothing at the path it was given",
                       hint="torch.save(everything, path).")
    returned = got["returned"]
    checks.assert_true(isinstance(returned, (int, float)) and not isinstance(returned, bool)
                       and returned == n,
                       f"load_checkpoint returned {returned!r}; the checkpoint was saved with step={n}",
                       hint=hints.MISTAKES["ckpt_step"])
    for name, p in saved["params"].items():
        checks.assert_true(torch.equal(loaded["params"][name], p),
                           f"after load_checkpoint, parameter {name} is not the saved one",
                           hint=hints.MISTAKES["ckpt_model"])
    checks.assert_true(set(loaded["moments"]) == set(saved["moments"]) and all(
        torch.equal(loaded["moments"][k], v) for k, v in saved["moments"].items()),
        "after load_checkpoint, the optimizer's state (Adam's moments) is not the saved one",
        hint=hints.MISTAKES["ckpt_optimizer"])
    checks.assert_true(loaded["scheduler_step"] == saved["scheduler_step"] and loaded["lr"] == saved["lr"],
                       f"after load_checkpoint, the scheduler is at step {loaded['scheduler_step']} "
                       f"(lr {loaded['lr']:.6g}); it was saved at step {saved['scheduler_step']} "
                       f"(lr {saved['lr']:.6g})", hint=hints.MISTAKES["ckpt_scheduler"])
    checks.assert_true(loaded["scaler"] == saved["scaler"],
                       f"after load_checkpoint, the GradScaler's state is {loaded['scaler']}; "
                       f"it was saved as {saved['scaler']}", hint=hints.MISTAKES["ckpt_scaler"])
    checks.assert_true(torch.equal(loaded["rng"], saved["rng"]),
                       "after load_checkpoint, torch's random-number state is not the one at "
                       "save time, so dropout draws different masks", hint=hints.MISTAKES["ckpt_rng"])
    for name, p in straight["params"].items():
        if not torch.equal(resumed["params"][name], p):
            diff = (resumed["params"][name].double() - p.double()).abs().max().item()
            checks.fail(f"{n} steps + save + load + {n} steps differs from {2 * n} steps in a row: "
                        f"parameter {name}, max abs difference {diff:.3g} (must be bit-identical)",
                        hint="Everything that influences the next steps must be saved and restored: "
                             "model, optimizer, scheduler, scaler and random-number states.")
    checks.assert_true(resumed["scaler"] == straight["scaler"],
                       f"after resuming, the GradScaler's state is {resumed['scaler']}, but "
                       f"{straight['scaler']} without the interruption", hint=hints.MISTAKES["ckpt_scaler"])
    checks.assert_true(resumed["lr"] == straight["lr"],
                       f"after resuming, the learning rate is {resumed['lr']:.6g}, but "
                       f"{straight['lr']:.6g} without the interruption", hint=hints.MISTAKES["ckpt_scheduler"])


# ==================================================================== train
def test_train_runs_the_steps_and_checkpoints(ctx, student):
    """train runs `steps` train_steps on fresh batches, passes its options on, returns the losses, and checkpoints after each step whose number (from start_step + 1) is a multiple of checkpoint_every."""
    _need_cpu_grad_scaler()
    steps, start, every = 7, 4, 3
    config = tiny.scenario(seed=71, schedule=[1.0 / (1.0 + 0.3 * s) for s in range(40)],
                           kwargs={"max_grad_norm": 0.05, "label_smoothing": 0.2, "pad_id": 0,
                                   "amp_dtype": torch.bfloat16})
    got = run_procedure(ctx.client, "training:train_run", config, steps=steps, start_step=start,
                        checkpoint_every=every, timeout=30)
    losses, ref = got["losses"], got["one_by_one"]
    checks.assert_true(isinstance(losses, (list, tuple)),
                       f"train must return the list of losses; it returned {losses!r}")
    checks.assert_true(len(losses) == steps, f"train(steps={steps}) returned {len(losses)} losses",
                       hint="One train_step, and one loss, per step.")
    for i, (a, b) in enumerate(zip(losses, ref["losses"]), start=1):
        value = _number(a, f"loss {i} returned by train")
        if not _same_number(value, _number(b, "train_step's loss"), 1e-6, 1e-6):
            if i > 1 and got["batches_used"] < min(i, steps):
                hint = hints.MISTAKES["train_same_batch"]
            elif got["lr_final"] != ref["lr_final"]:
                hint = hints.MISTAKES["train_scheduler_twice"]
            else:
                hint = hints.MISTAKES["train_kwargs"]
            checks.fail(f"loss {i} of train(...) is {value:.7g}, but {_number(b, ''):.7g} when the "
                        "same steps are made one by one with train_step", hint=hint)
    for name, p in ref["params"][-1].items():
        checks.assert_true(_tensors_close(got["final"][name], p, 1e-6, 1e-6),
                           f"after train(steps={steps}), parameter {name} differs from {steps} calls "
                           "of train_step", hint=hints.MISTAKES["train_kwargs"])
    numbers = [k for k in range(start + 1, start + steps + 1) if k % every == 0]
    ckpt = got["checkpoint"]
    checks.assert_true(ckpt["exists"], f"train(start_step={start}, steps={steps}, checkpoint_every="
                       f"{every}) saved no checkpoint (steps {numbers} are multiples of {every})",
                       hint=hints.MISTAKES["train_ckpt_number"])
    last = numbers[-1]
    checks.assert_true(ckpt.get("step") == last,
                       f"the last checkpoint records step {ckpt.get('step')!r}; steps are numbered "
                       f"{start + 1}..{start + steps}, so the last multiple of {every} is {last}",
                       hint=hints.MISTAKES["train_ckpt_number"])
    for name, p in ref["params"][last - start - 1].items():
        checks.assert_true(_tensors_close(ckpt["params"][name], p, 1e-6, 1e-6),
                           f"the checkpoint saved as step {last} does not hold the parameters after "
                           f"step {last}", hint=hints.MISTAKES["train_ckpt_number"])
    checks.assert_true(not got["unexpected_files"],
                       f"train wrote {got['unexpected_files']} with checkpoint_every=0 or "
                       "checkpoint_path=None", hint="Save only when both checkpoint_path and "
                                                    "checkpoint_every are set.")


# ==================================================================== the timed check
@pytest.mark.weight(4)
def test_trains_the_transformer_to_target_in_time(ctx, student):
    """your train + make_optimizer train your own Transformer (your exercises 1-7) to >= 95% held-out token accuracy on sequence reversal within the time budget, as the judge measures it on its own model with your trained weights."""
    if not ctx.options.train:
        raise NotRun("the timed training check was skipped (--no-train): not run, not awarded")
    if ctx.device == "cpu":
        _need_cpu_grad_scaler()
    config = training_check.config_for(ctx.device, ctx.options.amp)
    try:
        result = training_check.run(ctx.own_stack_client(), config, seed=ctx.seed % (2**31 - 1),
                                   budget_s=ctx.options.training_budget_s)
    except (StudentAbort, StudentError) as exc:
        partial = getattr(exc, "training_result", None)
        if partial is not None:
            ctx.extra["training"] = partial.to_dict()
        advice = training_check.amp_overflow_advice(exc.message)
        if advice:
            exc.message = f"{exc.message}\n{advice}"
        raise
    ctx.extra["training"] = result.to_dict()
    if not result.passed:
        checks.fail(result.reason, hint=training_hint(result))


def training_hint(result) -> str:
    if result.reason.startswith("ran out of time") and result.accuracy >= 0.5:
        return ("It learns, but too slowly: avoid Python loops over the batch or the sequence "
                "(one batched forward pass per step), .item() calls inside loops, and CPU-GPU copies.")
    return ("Check train_step against the unit tests above: the order of the AMP calls, the "
            "learning-rate schedule, the loss ignoring padding, and that train draws a new batch "
            "per step.")
