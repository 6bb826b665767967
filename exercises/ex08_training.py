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
    # TODO: Implement for Exercise 8.
    raise NotImplementedError("Exercise 8: noam_lr")


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
    # TODO: Implement for Exercise 8.
    raise NotImplementedError("Exercise 8: label_smoothed_cross_entropy")


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
    # TODO: Implement for Exercise 8.
    raise NotImplementedError("Exercise 8: make_optimizer")


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
    # TODO: Implement for Exercise 8.
    raise NotImplementedError("Exercise 8: train_step")


def save_checkpoint(path, *, model, optimizer, scheduler, scaler, step):
    """Save everything needed to resume training bit-for-bit.

    Args:
        path: file to write.
        model, optimizer, scheduler, scaler: their state dicts are saved
            (scheduler and scaler may be None).
        step: the number of the last completed step.
    """
    # TODO: Implement for Exercise 8.
    raise NotImplementedError("Exercise 8: save_checkpoint")


def load_checkpoint(path, *, model, optimizer, scheduler, scaler):
    """Restore a checkpoint written by ``save_checkpoint`` into fresh objects.

    Args:
        path: file to read.
        model, optimizer, scheduler, scaler: objects to load the states into
            (scheduler and scaler may be None).

    Returns:
        The saved step number, an int.
    """
    # TODO: Implement for Exercise 8.
    raise NotImplementedError("Exercise 8: load_checkpoint")


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
    # TODO: Implement for Exercise 8.
    raise NotImplementedError("Exercise 8: train")
