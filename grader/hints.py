"""The usual mistakes, and how to recognise them.

A hidden test that finds a wrong value computes what the usual mistakes would
have produced on the same input (`candidates`), and `diagnose` names the one
the student's answer matches.  The texts live here, one per mistake, so the
same slip is explained the same way in every exercise.
"""

from __future__ import annotations

import torch

MISTAKES: dict[str, str] = {
    # exercise 1
    "no_scale": "Forgot the 1/sqrt(d_k) scaling: scores must be q kᵀ / sqrt(d_k).",
    "scale_by_dk": "Divided by d_k instead of sqrt(d_k).",
    "scale_by_dv": "Scaled by sqrt(d_v) (the value size) instead of sqrt(d_k) (the key size).",
    "scale_multiplied": "Multiplied by sqrt(d_k) instead of dividing.",
    "softmax_wrong_dim": "Softmax over the wrong dimension: each query's weights (the last "
                         "dimension, over keys) must sum to 1.",
    "return_order_swapped": "Output and weights are returned in the wrong order: "
                            "`return output, weights`.",
    "weights_transposed": "The weights are transposed: rows are queries, columns are keys.",
    "no_softmax": "The softmax is missing: weights are softmax(q kᵀ / sqrt(d_k)).",
    "weights_before_scale": "Returned the weights before the softmax (the raw scores).",
    "projections_swapped": "Queries, keys and values come from W_q, W_k and W_v respectively; "
                           "two of them are swapped.",
    "softmax_overflow": "With large scores, exp() overflows to inf (inf / inf = NaN), or every allowed "
                        "key's weight underflows to 0 (0 / 0 = NaN) when masked keys are left in "
                        "the softmax: fill the masked scores with -inf first, then subtract each "
                        "row's maximum before exp (scores - scores.amax(-1, keepdim=True)), as "
                        "torch.softmax does.",
    "linear_bias": "The projections must have no bias (nn.Linear(..., bias=False)).",
    # exercise 2
    "mask_inverted": "The mask convention is inverted: True means NOT allowed "
                     "(like nn.MultiheadAttention's attn_mask), so fill where mask is True.",
    "mask_after_softmax": "The mask was applied after the softmax: mask the scores first, "
                          "then softmax, so each row still sums to 1.",
    "mask_ignored": "The mask is ignored.",
    "mask_zero_fill": "Masked scores were filled with 0 instead of -inf (or the dtype's "
                      "minimum): exp(0) is not 0, so masked keys still get weight.",
    "causal_lower": "The causal mask must be True strictly ABOVE the diagonal (future keys).",
    "causal_diagonal": "The causal mask must not include the diagonal: a token may attend to itself.",
    "padding_off_by_one": "Padding starts at index lengths[b] (positions >= length are padding).",
    "padding_transposed": "The padding mask is (B, max_len): one row per sequence, one column per position.",
    "mask_added": "The boolean mask was added to the scores (True counts as +1): fill the masked "
                  "scores with -inf instead (scores.masked_fill(mask, float('-inf'))).",
    "mask_large_finite": "Masked scores were filled with a finite number that is not small enough: "
                         "masked keys must get exactly zero weight; use -inf or torch.finfo(dtype).min.",
    "mask_not_bool": "Return a boolean mask (dtype torch.bool, True = not allowed), not 0/1 or "
                     "-inf/0 numbers.",
    "mask_wrong_device": "Build the mask on the requested device (the `device` argument, or "
                         "lengths.device): torch.ones(..., device=device), torch.arange(..., device=...).",
    "always_causal": "masked_attention must apply the mask it is given, not a causal mask of its own.",
    # exercise 3
    "keys_from_x_q": "Keys taken from x_q: the keys are W_k(x_k); only the queries come from x_q.",
    "values_from_x_k": "Values taken from x_k: the values are W_v(x_v). x_k and x_v are often "
                       "the same tensor (the encoder memory), so the slip hides until they differ.",
    "values_from_x_q": "Values taken from x_q: the values are W_v(x_v); only the queries come from x_q.",
    "queries_from_x_k": "Queries taken from x_k: the queries are W_q(x_q), one per decoder position.",
    "keys_values_swapped": "Keys and values swapped: keys are W_k(x_k), values are W_v(x_v).",
    "scale_by_length": "Scaled by the square root of a sequence length (size(1)) instead of "
                       "sqrt(d_k), the feature size (size(-1)).",
    # exercise 4
    "heads_mixed": "Heads mixed: matches with 1 head but not with 2 or more: check the reshape "
                   "before splitting heads (view (B, L, D) as (B, L, H, d_k), then transpose(1, 2) "
                   "to (B, H, L, d_k)) and the merge after attention (transpose(1, 2) back to "
                   "(B, Lq, H, d_k), then reshape to (B, Lq, D)).",
    "heads_split_without_transpose": "Heads mixed: matches with 1 head but not with 2: check the "
                                     "reshape before splitting heads. view(B, H, L, d_k) straight "
                                     "from (B, L, D) mixes tokens into heads; view as (B, L, H, d_k), "
                                     "then transpose(1, 2).",
    "heads_merged_without_transpose": "Heads mixed when they are concatenated: (B, H, Lq, d_k) must "
                                      "be transposed to (B, Lq, H, d_k) before the reshape to "
                                      "(B, Lq, D); a reshape alone mixes tokens and heads.",
    "heads_strided": "Head h must use the contiguous features h*d_k:(h+1)*d_k of each projection "
                     "(view as (B, L, H, d_k)), not every H-th feature (view as (B, L, d_k, H)).",
    "scale_by_d_model": "Scaling by sqrt(d_model) instead of sqrt(d_k): each head has width "
                        "d_k = d_model / num_heads.",
    "no_w_o": "W_o missing: the concatenated heads must go through the output projection W_o.",
    "weights_averaged": "Averaged weights over heads: return each head's weights, shape "
                        "(B, num_heads, Lq, Lk) (average_attn_weights=False).",
    "weights_heads_flattened": "The weights must have shape (B, num_heads, Lq, Lk), not "
                               "(B * num_heads, Lq, Lk).",
    "no_bias": "The projections ignore their bias: with bias=True, W_q, W_k, W_v and W_o are "
               "nn.Linear(d_model, d_model, bias=True), and the bias is used.",
    "keys_from_query": "Keys or values computed from the query input: keys are W_k(key), values "
                       "W_v(value). Self-attention hides this; cross-attention does not.",
    "values_from_query": "Values computed from the query input: values are W_v(value), keys W_k(key); "
                         "only the queries come from `query`.",
    "values_from_key": "Values computed from the key input: values are W_v(value). Encoder-decoder "
                       "attention passes the same tensor for both, which hides it.",
    "padding_mask_wrong_axis": "key_padding_mask hides keys: reshape (B, Lk) to (B, 1, 1, Lk) "
                               "(batch, head, query, key) before combining it with the scores.",
    "padding_mask_heads": "key_padding_mask broadcast on the wrong dimension: (B, Lk) must become "
                          "(B, 1, 1, Lk); (B, 1, Lk) lines the batch up with the heads.",
    "padding_mask_ignored": "key_padding_mask is ignored: padded keys (True) must get zero weight.",
    "attn_mask_ignored": "attn_mask is ignored (perhaps when key_padding_mask is also given): "
                         "combine both masks with `|`.",
    "masks_inverted": "The mask convention is inverted: True means NOT allowed, in attn_mask and "
                      "in key_padding_mask (like nn.MultiheadAttention).",
    # exercise 5
    "pe_sin_cos_swapped": "sin and cos swapped: even features (0, 2, 4, ...) get the sine, odd "
                          "features the cosine; PE[0] is [0, 1, 0, 1, ...].",
    "pe_concatenated": "Concatenated instead of interleaved: the sine and cosine of one frequency "
                       "sit side by side (PE[:, 2i] = sin, PE[:, 2i+1] = cos), not "
                       "[all sines | all cosines]. Use pe[:, 0::2] = sin, pe[:, 1::2] = cos, or "
                       "torch.stack([sin, cos], -1).flatten(-2).",
    "pe_exponent_i": "The exponent uses i instead of 2i: the angle is pos / 10000^(2i / d_model), "
                     "i being the index of the (sin, cos) pair; torch.arange(0, d_model, 2) gives 2i.",
    "pe_exponent_feature": "Both features of a pair (2i, 2i+1) share one frequency, "
                           "1 / 10000^(2i / d_model): the cosine must not use 2i+1 in the exponent.",
    "pe_multiplied": "pos is multiplied by 10000^(2i / d_model) instead of divided by it.",
    "pe_not_interleaved": "Features 2i and 2i+1 must be the sine and cosine of ONE frequency: "
                          "interleave them, sin on even features, cos on odd ones.",
    "pe_not_buffer": "Register the table with self.register_buffer('pe', table): a plain attribute "
                     "does not follow .to(device) / .double(), and an nn.Parameter would be trained.",
    "pe_dropout_in_eval": "Dropout is applied in eval mode too: use nn.Dropout (it follows "
                          "train()/eval()), or F.dropout(..., training=self.training).",
    "pe_dropout_placement": "Dropout goes on the sum, dropout(x + pe[:L]), not on x or the table alone.",
    # exercise 6
    "pre_norm": "This is pre-norm, x + sublayer(norm(x)); the paper, and this exercise, use "
                "post-norm: x = norm(x + dropout(sublayer(x))), the LayerNorm AFTER the residual sum.",
    "no_residual": "The residual connection is missing: each sub-layer gives norm(x + sublayer(x)), "
                   "not norm(sublayer(x)).",
    "norm_inside_residual": "The LayerNorm is applied to the sub-layer's output before the residual "
                            "sum (x + norm(sublayer(x))); normalize the SUM: norm(x + sublayer(x)).",
    "no_relu": "The feed-forward network has no ReLU between its linear layers: "
               "FFN(x) = linear2(relu(linear1(x))).",
    "relu_after_linear2": "The ReLU goes between linear1 and linear2 only, not after linear2.",
    "norms_mixed": "Each sub-layer has its own LayerNorm, in order: norm1 after self-attention, "
                   "norm2 after the next sub-layer, norm3 (decoder) after the feed-forward network.",
    "cross_from_x": "Cross-attention takes its queries from x but its keys and values from memory "
                    "(the encoder's output): cross_attn(x, memory, memory).",
    "cross_copied_from_self": "Cross-attention looks like a copy of the self-attention call: its keys "
                              "and values come from memory, cross_attn(x, memory, memory, "
                              "key_padding_mask=memory_key_padding_mask).",
    "tgt_mask_ignored": "The decoder's self-attention must pass tgt_mask (the causal mask) as attn_mask.",
    "memory_padding_ignored": "Cross-attention must pass memory_key_padding_mask as its "
                              "key_padding_mask: padded source positions get zero weight.",
    "padding_ignored": "Self-attention must pass the sequence's own padding mask as key_padding_mask.",
    "causal_in_cross": "The causal mask belongs to the decoder's SELF-attention only; cross-attention "
                       "sees the whole source (only its padding is masked).",
    "tgt_padding_in_cross": "Cross-attention's keys are the memory positions: mask them with "
                            "memory_key_padding_mask, not tgt_key_padding_mask.",
    # exercise 7
    "embed_not_scaled": "The embeddings must be multiplied by sqrt(d_model) before the positional "
                        "encoding is added (section 3.4 of the paper).",
    "embed_scaled_by_d_model": "The embeddings are multiplied by d_model instead of sqrt(d_model).",
    "scale_after_pe": "Scale first, then add the positional encoding: embed(x) * sqrt(d_model) + PE, "
                      "not (embed(x) + PE) * sqrt(d_model).",
    "no_positional": "The positional encoding is missing: pass the scaled embeddings through self.positional.",
    "final_layernorm": "There is an extra LayerNorm after the stacks: in the paper (post-norm) each "
                       "stack ends with its last layer's own LayerNorm, and nothing after it.",
    "no_causal_mask": "decode must build the causal mask (True above the diagonal, on the target's "
                      "device) and pass it as tgt_mask to every decoder layer.",
    "memory_padding_missing": "forward must also pass the source padding mask to decode, as "
                              "memory_key_padding_mask: padded source positions must not be attended.",
    "encoder_padding_missing": "encode must pass src_key_padding_mask to every encoder layer.",
    "tie_copy": "With tie_weights=True write `self.generator.weight = self.tgt_embed.weight`: ONE "
                "parameter object. nn.Parameter(...), .clone() or copy_() make a second parameter "
                "that is trained separately.",
    "tie_always": "Share the weights only when tie_weights=True; by default the generator has its own weight.",
    "greedy_bos": "Every row starts with bos_id: ys = torch.full((B, 1), bos_id, dtype=torch.long, "
                  "device=src.device).",
    "greedy_argmax": "Each next token is the argmax over the vocabulary of the LAST position's logits, "
                     "given everything generated so far: generator(decode(ys, memory))[:, -1].argmax(-1).",
    "greedy_fill": "A row that has produced eos_id is finished: from then on it gets eos_id, whatever "
                   "the model says (keep a `finished` flag per row).",
    "greedy_stop": "Stop as soon as EVERY row has produced eos_id (finished.all()), not when the first "
                   "one has, and not only at max_len.",
    "greedy_max_len": "max_len counts every returned token, bos included: at most max_len - 1 "
                      "decoding steps.",
    "greedy_mode": "greedy_decode must not call model.eval() or model.train(): the caller chooses the "
                   "mode; use torch.no_grad() to avoid building a graph.",
    # exercise 8
    "noam_no_d_model": "The d_model ** -0.5 factor is missing: lr = factor * d_model^-0.5 * "
                       "min(step^-0.5, step * warmup^-1.5).",
    "noam_warmup_power": "The warm-up branch is step * warmup^-1.5 (not warmup^-0.5): the two "
                         "branches must meet at step == warmup.",
    "noam_sqrt_warmup": "The warm-up branch is step * warmup^-1.5, i.e. step / warmup^1.5.",
    "noam_max": "min(step^-0.5, step * warmup^-1.5), not max: the rate rises during warm-up, then decays.",
    "noam_no_factor": "`factor` multiplies the whole rate.",
    "noam_step_below_one": "A step below 1 counts as 1: step = max(step, 1) first (step 0 would "
                           "divide by zero in step^-0.5).",
    "ls_over_v_minus_1": "PyTorch's label smoothing spreads eps over ALL V classes (the right one "
                         "included): loss = (1 - eps) * nll + eps * mean over classes of -log p.",
    "ls_mean_over_padding": "The mean must be over the tokens whose target != ignore_index only: "
                            "divide by the number of kept tokens, not by all of them.",
    "ls_padding_in_smoothing": "Ignored tokens must drop out of the smoothing term too, not only "
                               "out of the negative log-likelihood.",
    "ls_no_smoothing": "eps is not applied: mix (1 - eps) * nll with eps * (mean over classes of -log p).",
    "ls_sum": "Average over the kept tokens, do not sum.",
    "ls_eps_twice": "eps is counted twice: the weights are (1 - eps) on the target and eps spread "
                    "uniformly over all V classes.",
    "ls_target_weight_one": "The right class gets weight (1 - eps) on its nll, not 1.",
    "ls_kl_divergence": "This is the KL divergence to the smoothed target; F.cross_entropy's "
                        "label smoothing is the cross-entropy, which adds the target's entropy "
                        "(a constant).",
    "ls_detached": "The loss must stay differentiable: no .item(), .detach(), .data or numpy inside it.",
    "adam_betas": "Adam's betas are (0.9, 0.98) in the paper (PyTorch's default is (0.9, 0.999)).",
    "adam_eps": "Adam's eps is 1e-9 in the paper (PyTorch's default is 1e-8).",
    "adam_base_lr": "The optimizer's base lr must be 1.0: the LambdaLR's factor IS the learning "
                    "rate (lr = 1.0 * noam_lr(...)).",
    "sched_off_by_one": "At scheduler step s the rate is noam_lr(s + 1, ...): LambdaLR counts from "
                        "0, the paper from 1.",
    "sched_factor_ignored": "make_optimizer must pass `factor` on to noam_lr.",
    "adam_not_adam": "make_optimizer must return torch.optim.Adam (no weight decay, not AMSGrad).",
    "clip_before_unscale": "Clipping happened before scaler.unscale_(optimizer): it clipped the "
                           "SCALED gradients (thousands of times too big), so the real step is "
                           "tiny. Unscale first, then clip.",
    "no_zero_grad": "The gradients are not zeroed: each step adds to the previous step's gradients. "
                    "Call optimizer.zero_grad() at the start of the step.",
    "scheduler_twice": "The scheduler is stepped twice per step: once, after the optimizer.",
    "scheduler_before_optimizer": "scheduler.step() must come after scaler.step(optimizer): "
                                  "stepping it first uses the next step's learning rate.",
    "scaled_loss_returned": "Return the unscaled loss (loss.item()), not scaler.scale(loss).",
    "no_clipping": "The gradients are not clipped: torch.nn.utils.clip_grad_norm_(model.parameters(), "
                   "max_grad_norm) after scaler.unscale_(optimizer).",
    "padding_in_loss": "The loss counts padding tokens: pass ignore_index=pad_id to the loss.",
    "optimizer_step_direct": "optimizer.step() was called directly: use scaler.step(optimizer), "
                             "which skips the step when a gradient is inf or NaN (and unscales "
                             "if you have not).",
    "no_padding_masks": "The forward pass must get the padding masks: "
                        "model(src, tgt_in, src_key_padding_mask=(src == pad_id), "
                        "tgt_key_padding_mask=(tgt_in == pad_id)).",
    "label_smoothing_ignored": "Use the label_smoothing argument, not a fixed 0.1.",
    "pad_id_hardcoded": "Use the pad_id argument (for the masks and the loss), not a fixed 0.",
    "no_scaling": "Back-propagate the scaled loss, scaler.scale(loss).backward(): scaler.step() "
                  "divides the gradients by the scale.",
    "no_scaler_update": "Call scaler.update() after scaler.step(optimizer) at every step: it "
                        "adapts the scale and resets the scaler for the next step.",
    "autocast_device": "The forward pass did not run under autocast on the model's device: take "
                       "the device type from the model's parameters "
                       "(next(model.parameters()).device.type), never hard-code 'cuda'.",
    "autocast_always_on": "With amp_dtype=None there must be no autocast: "
                          "torch.autocast(..., dtype=None) still enables it with the default "
                          "dtype; pass enabled=amp_dtype is not None.",
    "autocast_dtype": "Autocast must use the dtype it is given (amp_dtype).",
    "mode_changed": "train_step must not call model.train() or model.eval(): the caller sets the mode.",
    "ckpt_rng": "Save and restore the random-number state (torch.get_rng_state() / "
                "torch.set_rng_state(), and CUDA's): dropout draws its masks from it.",
    "ckpt_model": "load_checkpoint must restore the model's parameters (model.load_state_dict).",
    "ckpt_optimizer": "Save and restore the optimizer's state_dict: Adam's moment estimates "
                      "decide the next steps.",
    "ckpt_scheduler": "Save and restore the scheduler's state_dict: otherwise the learning-rate "
                      "schedule restarts from step 0.",
    "ckpt_scaler": "Save and restore the GradScaler's state_dict (its scale and growth tracker).",
    "ckpt_step": "load_checkpoint returns the step number that save_checkpoint was given.",
    "train_kwargs": "train must pass max_grad_norm, amp_dtype, pad_id and label_smoothing on to train_step.",
    "train_same_batch": "Draw a NEW batch for every step (iterate over `batches` once: "
                        "it = iter(batches); next(it)); next(iter(batches)) restarts a list each time.",
    "train_scheduler_twice": "The scheduler is stepped twice per step: train_step steps it, so "
                             "train must not step it again.",
    "train_ckpt_number": "Steps are numbered start_step + 1 ... start_step + steps; save after each "
                         "step whose NUMBER is a multiple of checkpoint_every, recording that number.",
}


# Candidate keys that are another way to make the same mistake: the test
# computes them separately (they give different numbers), the student reads
# one text.
SAME_MISTAKE: dict[str, str] = {
    "mask_inverted_finite": "mask_inverted",
    "masks_inverted_finite": "masks_inverted",
    "masks_inverted_combined": "masks_inverted",
    "masks_inverted_combined_finite": "masks_inverted",
    "heads_split_only_without_transpose": "heads_split_without_transpose",
}


def hint(key: str) -> str:
    return MISTAKES[SAME_MISTAKE.get(key, key)]


def _text(key: str) -> str:
    key = SAME_MISTAKE.get(key, key)
    return MISTAKES.get(key, key)


SEVERAL_DIFFER = ("No single usual mistake reproduces your output: more than one thing seems to "
                  "differ. The closest candidates: ")

# A candidate is "close" when it explains at least this share of the
# distance between the answer and the reference.
_CLOSE = 0.8


def diagnose(actual, candidates: dict[str, torch.Tensor], *, atol: float = 1e-5,
             rtol: float = 1e-4, expected: torch.Tensor | None = None, near: bool = True) -> str:
    """The text of the usual mistake whose output reproduces `actual` within
    (atol, rtol).  A candidate that equals `expected` within that tolerance
    proves nothing on this input and is never claimed.  When no candidate
    reproduces `actual` but some come much closer to it than `expected` does,
    the answer says that more than one thing differs and names them (unless
    near=False); else ""."""
    if not isinstance(actual, torch.Tensor):
        return ""
    a = actual.detach().to("cpu", torch.float64)
    e = None if expected is None else expected.detach().to("cpu", torch.float64)
    if e is not None and e.shape != a.shape:
        e = None
    close: list[tuple[float, str]] = []
    for key, candidate in candidates.items():
        if candidate is None or candidate.shape != actual.shape:
            continue
        c = candidate.detach().to("cpu", torch.float64)
        if e is not None and torch.allclose(c, e, atol=atol, rtol=rtol, equal_nan=True):
            continue
        if torch.allclose(a, c, atol=atol, rtol=rtol, equal_nan=True):
            return _text(key)
        if e is not None:
            finite = torch.isfinite(a) & torch.isfinite(c) & torch.isfinite(e)
            if bool(finite.any()):
                to_reference = float((a - e)[finite].norm())
                to_candidate = float((a - c)[finite].norm())
                if to_reference > 0 and to_candidate < _CLOSE * to_reference:
                    close.append((to_candidate / to_reference, _text(key)))
    if not close or not near:
        return ""
    close.sort()
    names = list(dict.fromkeys(text for _, text in close))[:2]
    return SEVERAL_DIFFER + " / ".join(f"({i + 1}) {t}" for i, t in enumerate(names))


# What an exception raised in student code usually means.  Matched against
# the message of an `error`; the first pattern that matches gives the hint.
ERROR_HINTS: tuple[tuple[str, str], ...] = (
    (r"shapes cannot be multiplied|size of tensor a .* must match the size of tensor b"
     r"|Expected size for first two dimensions of batch2 tensor",
     "The shapes do not line up for the product: transpose only the last two "
     "dimensions (k.transpose(-2, -1)); `.T` reverses all of them once there is a batch dimension."),
    (r"Expected all tensors to be on the same device|on different devices",
     "A tensor was created on the default device: build new tensors with device=x.device "
     "(and dtype=x.dtype)."),
    (r"expected (scalar type|m1 and m2 to have the same dtype)|dtype .* but got|mat1 and mat2 must have the same dtype",
     "Mixed dtypes: build new tensors with dtype=x.dtype instead of torch's default float32."),
    (r"view size is not compatible with input tensor's size and stride",
     "`.view` after a transpose needs `.contiguous()` first (or use `.reshape`)."),
    (r"object is not callable|has no attribute",
     "Check the names against the exercise's contract (attributes, methods, return values)."),
)


def error_hint(message: str) -> str:
    import re

    for pattern, text in ERROR_HINTS:
        if re.search(pattern, message):
            return text
    return ""
