"""The judge's own exercise 8: the Noam schedule, the loss and the training
step, written from the paper and PyTorch's built-ins.  Never imports student
code.

`train_step(..., mistake=KEY)` reproduces a usual mistake instead, so that a
failing test can say which one the submission's numbers match.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def noam_lr(step, d_model, warmup, factor=1.0) -> float:
    """factor * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5), step >= 1."""
    step = max(step, 1)
    return factor * d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)


def noam_mistakes(step, d_model, warmup, factor=1.0) -> dict[str, float]:
    """What the usual slips return (for hints)."""
    s = max(step, 1)
    return {
        "noam_no_d_model": factor * min(s ** -0.5, s * warmup ** -1.5),
        "noam_warmup_power": factor * d_model ** -0.5 * min(s ** -0.5, s * warmup ** -0.5),
        "noam_max": factor * d_model ** -0.5 * max(s ** -0.5, s * warmup ** -1.5),
        "noam_no_factor": d_model ** -0.5 * min(s ** -0.5, s * warmup ** -1.5),
        "noam_sqrt_warmup": factor * d_model ** -0.5 * min(s ** -0.5, s * warmup ** -0.5 / warmup),
    }


def label_smoothed_cross_entropy(logits, target, eps=0.1, ignore_index=-100):
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), target.reshape(-1), label_smoothing=eps,
                           ignore_index=ignore_index)


def loss_mistakes(logits, target, eps, ignore_index) -> dict[str, torch.Tensor]:
    """What the usual slips of the label-smoothed loss return, in float64."""
    V = logits.shape[-1]
    x = logits.detach().to(torch.float64).reshape(-1, V)
    t = target.reshape(-1)
    keep = t != ignore_index
    logp = torch.log_softmax(x, -1)
    nll = -logp.gather(1, t.clamp(0, V - 1).masked_fill(~keep, 0).unsqueeze(1)).squeeze(1)
    uniform = -logp.mean(-1)
    # eps spread over the V - 1 wrong classes only
    others = (-logp.sum(-1) - nll) / max(V - 1, 1)
    n = keep.sum().clamp(min=1)
    out = {
        "ls_over_v_minus_1": (((1 - eps) * nll + eps * others) * keep).sum() / n,
        "ls_mean_over_padding": (((1 - eps) * nll + eps * uniform) * keep).sum() / t.numel(),
        "ls_padding_in_smoothing": ((1 - eps) * (nll * keep).sum() + eps * uniform.sum()) / n,
        "ls_no_smoothing": (nll * keep).sum() / n,
        "ls_sum": (((1 - eps) * nll + eps * uniform) * keep).sum(),
        "ls_eps_twice": (((1 - 2 * eps) * nll + 2 * eps * uniform) * keep).sum() / n,
        "ls_target_weight_one": ((nll + eps * uniform) * keep).sum() / n,
    }
    if eps > 0:
        # KL divergence to the smoothed target: cross-entropy minus the target's entropy
        q_true = 1 - eps + eps / V
        q_other = eps / V
        entropy = -(q_true * torch.log(torch.tensor(q_true, dtype=torch.float64))
                    + (V - 1) * q_other * torch.log(torch.tensor(q_other, dtype=torch.float64)))
        right = F.cross_entropy(x, t, label_smoothing=eps, ignore_index=ignore_index)
        out["ls_kl_divergence"] = right - entropy
    return out


# Not mistakes: other orders the contract allows, accepted as they are.
TRAIN_STEP_VARIANTS = ("scheduler_only_after_real_steps",)

TRAIN_STEP_MISTAKES = (
    "clip_before_unscale", "no_zero_grad", "scheduler_twice", "scheduler_before_optimizer",
    "scaled_loss_returned", "no_clipping", "padding_in_loss", "optimizer_step_direct",
    "no_padding_masks", "label_smoothing_ignored", "pad_id_hardcoded", "no_scaling",
)


def train_step(model, batch, optimizer, scaler, scheduler=None, *, max_grad_norm=1.0,
               amp_dtype=None, pad_id=0, label_smoothing=0.1, mistake: str | None = None):
    """The contract's order: zero_grad, forward (autocast), loss, scaled
    backward, unscale_, clip, scaler.step, scaler.update, scheduler.step."""
    src, tgt_in, tgt_out = batch
    device_type = next(model.parameters()).device.type
    if mistake == "pad_id_hardcoded":
        pad_id = 0
    if mistake == "label_smoothing_ignored":
        label_smoothing = 0.1
    if mistake != "no_zero_grad":
        optimizer.zero_grad(set_to_none=True)
    masks = {} if mistake == "no_padding_masks" else {
        "src_key_padding_mask": src == pad_id, "tgt_key_padding_mask": tgt_in == pad_id}
    with torch.autocast(device_type, dtype=amp_dtype, enabled=amp_dtype is not None):
        logits = model(src, tgt_in, **masks)
    ignore = -100 if mistake == "padding_in_loss" else pad_id
    loss = label_smoothed_cross_entropy(logits.float(), tgt_out, label_smoothing, ignore)
    if mistake == "scheduler_before_optimizer" and scheduler is not None:
        scheduler.step()
    scaled = scaler.scale(loss)
    if mistake == "no_scaling":
        loss.backward()
    else:
        scaled.backward()
    if mistake == "clip_before_unscale":
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        scaler.unscale_(optimizer)
    elif mistake != "no_clipping":
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    scale_before = scaler.get_scale() if scaler.is_enabled() else 1.0
    if mistake == "optimizer_step_direct":
        optimizer.step()
    else:
        scaler.step(optimizer)
    scaler.update()
    skipped = scaler.is_enabled() and scaler.get_scale() < scale_before
    if mistake == "scheduler_only_after_real_steps" and skipped:
        scheduler = None  # an accepted variant: the schedule waits for a real step
    if scheduler is not None and mistake != "scheduler_before_optimizer":
        scheduler.step()
        if mistake == "scheduler_twice":
            scheduler.step()
    if mistake == "scaled_loss_returned":
        return scaled.item()
    return loss.item()
