"""Exercise 8 · Training: Noam schedule, label smoothing, AMP, checkpoints.

Section 5 of the paper trains with Adam (beta1 = 0.9, beta2 = 0.98,
eps = 1e-9) and a learning rate that warms up linearly, then decays with the
inverse square root of the step ("Noam" schedule):

    lrate = factor * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)

The two branches meet at step = warmup, where the rate peaks. Here the
optimizer's base lr is 1.0 and a ``LambdaLR`` multiplies it by
``noam_lr(s + 1, ...)`` at scheduler step s (the first optimizer step is step 1).

Label smoothing (section 5.4, eps = 0.1) trains against a target that puts
1 - eps on the right token and spreads eps uniformly over all V classes. With
log-probabilities log p = log_softmax(logits):

    loss_token = (1 - eps) * (-log p[target]) + eps * mean_over_classes(-log p)
    loss       = mean of loss_token over the tokens whose target != ignore_index

which is exactly ``F.cross_entropy(..., label_smoothing=eps, ignore_index=...)``.
Padding tokens are ignored: they are neither counted nor averaged over.

One training step, in this order (mixed precision with a GradScaler):

    1. optimizer.zero_grad()
    2. forward under torch.autocast(device_type, dtype=amp_dtype) if amp_dtype
       (device_type from the model's parameters, never hard-coded)
    3. loss in float32 (logits.float()), ignoring pad_id
    4. scaler.scale(loss).backward()     a scaled loss keeps fp16 grads from underflowing
    5. scaler.unscale_(optimizer)        so that clipping sees the TRUE gradients
    6. clip_grad_norm_(..., max_grad_norm)
    7. scaler.step(optimizer)            skips the step if a gradient is inf/nan
    8. scaler.update()
    9. scheduler.step()

Checkpoints must hold everything that influences the future: the model, the
optimizer (Adam's moments), the scheduler (its step count), the scaler (its
scale), the step number, and the random-number generators (dropout draws its
masks from them). Then N steps + save + load + N steps is bit-identical to
2N steps in a row.

Usual mistakes:
- clipping before ``unscale_`` (clips the scaled gradients, 65536x too big);
- stepping the scheduler before the optimizer, or starting it at step 0
  (step^-0.5 is infinite);
- averaging the loss over padding tokens too, or computing the smoothing
  term as eps / (V - 1) on the wrong classes (PyTorch spreads eps over all V);
- calling ``model.train()`` inside ``train_step``: the caller sets the mode;
- forgetting the RNG state in the checkpoint: the resumed run then draws
  different dropout masks.
"""

import random

import torch
import torch.nn.functional as F


def noam_lr(step, d_model, warmup, factor=1.0):
    """factor * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5).

    Args:
        step: optimizer step, counted from 1 (a step below 1 counts as 1).
        d_model: the model width.
        warmup: number of warm-up steps.
        factor: overall multiplier.

    Returns:
        The learning rate, a float.
    """
    # BEGIN SOLUTION
    step = max(step, 1)
    return factor * d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)
    # END SOLUTION


def label_smoothed_cross_entropy(logits, target, eps=0.1, ignore_index=-100):
    """Cross-entropy against the smoothed target, averaged over real tokens.

    Args:
        logits: (N, V) or (B, T, V), unnormalized scores.
        target: LongTensor (N,) or (B, T), class indices.
        eps: label smoothing, in [0, 1].
        ignore_index: target value whose tokens do not count (padding).

    Returns:
        Scalar tensor, equal to ``F.cross_entropy(logits.reshape(-1, V),
        target.reshape(-1), label_smoothing=eps, ignore_index=ignore_index)``.
    """
    # BEGIN SOLUTION
    # 1. Flatten all tokens into one dimension.
    V = logits.size(-1)
    logits = logits.reshape(-1, V)  # (N, V)
    target = target.reshape(-1)  # (N,)

    # 2. Log-probabilities, in a numerically stable way.
    log_probs = F.log_softmax(logits, dim=-1)  # (N, V)

    # 3. Negative log-likelihood of the right class. Ignored tokens point at
    #    class 0 just so that gather has a valid index; they are dropped below.
    keep = target != ignore_index  # (N,)
    safe_target = target.masked_fill(~keep, 0)  # (N,)
    nll = -log_probs.gather(dim=-1, index=safe_target.unsqueeze(-1)).squeeze(-1)  # (N,)

    # 4. The uniform part: eps spread over all V classes.
    smooth = -log_probs.mean(dim=-1)  # (N,)

    # 5. Mix them, and average over the kept tokens only.
    loss = (1.0 - eps) * nll + eps * smooth  # (N,)
    loss = torch.where(keep, loss, torch.zeros_like(loss))  # (N,)
    return loss.sum() / keep.sum()  # scalar
    # END SOLUTION


def make_optimizer(model, d_model, warmup, factor=1.0):
    """Adam(betas=(0.9, 0.98), eps=1e-9, lr=1.0) and a Noam LambdaLR.

    Args:
        model: the module whose parameters are trained.
        d_model: the model width (for the schedule).
        warmup: number of warm-up steps.
        factor: overall multiplier of the schedule.

    Returns:
        (optimizer, scheduler); the scheduler's factor at step s is
        ``noam_lr(s + 1, d_model, warmup, factor)``.
    """
    # BEGIN SOLUTION
    optimizer = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda=lambda s: noam_lr(s + 1, d_model, warmup, factor)
    )
    return optimizer, scheduler
    # END SOLUTION


def train_step(
    model,
    batch,
    optimizer,
    scaler,
    scheduler=None,
    *,
    max_grad_norm=1.0,
    amp_dtype=None,
    pad_id=0,
    label_smoothing=0.1,
):
    """One optimizer step with optional mixed precision and gradient clipping.

    Does not change the model's train()/eval() mode.

    Args:
        model: a Transformer (exercise 7).
        batch: (src (B, S), tgt_in (B, T), tgt_out (B, T)) long tensors on the
            model's device, padded with pad_id.
        optimizer: e.g. from ``make_optimizer``.
        scaler: a ``torch.amp.GradScaler`` (possibly disabled).
        scheduler: optional LR scheduler, stepped after the optimizer.
        max_grad_norm: clip the global gradient norm to this value.
        amp_dtype: torch.float16 / torch.bfloat16 to run the forward pass
            under autocast, or None for full precision.
        pad_id: padding token id, ignored by the masks and the loss.
        label_smoothing: eps of the loss.

    Returns:
        The (unscaled) loss, a float.
    """
    # BEGIN SOLUTION
    src, tgt_in, tgt_out = batch  # (B, S), (B, T), (B, T)
    device_type = next(model.parameters()).device.type  # "cpu", "cuda", ...

    # 1. Fresh gradients.
    optimizer.zero_grad()

    # 2. Forward pass, under autocast when a low-precision dtype is asked for.
    src_pad = src == pad_id  # (B, S), True at padding
    tgt_pad = tgt_in == pad_id  # (B, T), True at padding
    with torch.autocast(device_type=device_type, dtype=amp_dtype, enabled=amp_dtype is not None):
        logits = model(
            src, tgt_in, src_key_padding_mask=src_pad, tgt_key_padding_mask=tgt_pad
        )  # (B, T, V)

    # 3. The loss in float32, padding ignored.
    loss = label_smoothed_cross_entropy(
        logits.float(), tgt_out, eps=label_smoothing, ignore_index=pad_id
    )

    # 4. Backward on the scaled loss.
    scaler.scale(loss).backward()

    # 5.-6. Unscale first, so that the clipping sees the true gradients.
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)

    # 7.-8. Step (skipped if a gradient is inf/nan) and adapt the scale.
    scaler.step(optimizer)
    scaler.update()

    # 9. Next learning rate.
    if scheduler is not None:
        scheduler.step()

    return loss.item()
    # END SOLUTION


def save_checkpoint(path, *, model, optimizer, scheduler, scaler, step):
    """Save everything needed to resume training bit-for-bit.

    Args:
        path: file to write.
        model, optimizer, scheduler, scaler: their state dicts are saved
            (scheduler and scaler may be None).
        step: the number of the last completed step.
    """
    # BEGIN SOLUTION
    rng = {
        "torch": torch.get_rng_state(),  # CPU generator (dropout on the CPU)
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
    }
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "step": step,
        "rng": rng,
    }
    torch.save(checkpoint, path)
    # END SOLUTION


def load_checkpoint(path, *, model, optimizer, scheduler, scaler):
    """Restore a checkpoint written by ``save_checkpoint`` into fresh objects.

    Args:
        path: file to read.
        model, optimizer, scheduler, scaler: objects to load the states into
            (scheduler and scaler may be None).

    Returns:
        The saved step number, an int.
    """
    # BEGIN SOLUTION
    # Load on the CPU: load_state_dict moves each tensor to where it belongs,
    # and the RNG states must be CPU byte tensors.
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)

    # 1. Model, optimizer, scheduler, scaler.
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    if scheduler is not None and checkpoint["scheduler"] is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
    if scaler is not None and checkpoint["scaler"] is not None:
        scaler.load_state_dict(checkpoint["scaler"])

    # 2. Random-number generators, last, so that nothing above consumes them.
    rng = checkpoint["rng"]
    torch.set_rng_state(rng["torch"])
    if torch.cuda.is_available() and len(rng["cuda"]) > 0:
        torch.cuda.set_rng_state_all(rng["cuda"])
    random.setstate(rng["python"])

    return int(checkpoint["step"])
    # END SOLUTION


def train(
    model,
    batches,
    *,
    steps,
    optimizer,
    scheduler,
    scaler,
    max_grad_norm=1.0,
    amp_dtype=None,
    pad_id=0,
    label_smoothing=0.1,
    checkpoint_path=None,
    checkpoint_every=0,
    start_step=0,
):
    """Run ``steps`` training steps, numbered start_step + 1 ... start_step + steps.

    Args:
        model, optimizer, scheduler, scaler: as in ``train_step``.
        batches: iterable of (src, tgt_in, tgt_out); one batch per step.
        steps: number of steps to run.
        max_grad_norm, amp_dtype, pad_id, label_smoothing: passed to ``train_step``.
        checkpoint_path: where to save checkpoints (None: never).
        checkpoint_every: save after each step whose number is a multiple of
            this (0: never).
        start_step: number of steps already done (what ``load_checkpoint``
            returned when resuming).

    Returns:
        The list of the ``steps`` losses, as floats.
    """
    # BEGIN SOLUTION
    losses = []
    batch_iter = iter(batches)
    for step in range(start_step + 1, start_step + steps + 1):
        # 1. One step on the next batch.
        batch = next(batch_iter)  # (src, tgt_in, tgt_out)
        loss = train_step(
            model,
            batch,
            optimizer,
            scaler,
            scheduler,
            max_grad_norm=max_grad_norm,
            amp_dtype=amp_dtype,
            pad_id=pad_id,
            label_smoothing=label_smoothing,
        )
        losses.append(loss)

        # 2. Checkpoint every `checkpoint_every` steps, recording this step's number.
        if checkpoint_path is not None and checkpoint_every and step % checkpoint_every == 0:
            save_checkpoint(
                checkpoint_path,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                scaler=scaler,
                step=step,
            )
    return losses
    # END SOLUTION
