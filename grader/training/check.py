"""The timed training check: can the student's own loop train the student's
own Transformer?  Decided by the judge.

The judge draws a synthetic task (grader/training/task.py: reverse random
token sequences of 4 to 10 symbols, with BOS/EOS/padding, and write them
through a token mapping drawn fresh for this run, so weights prepared in
advance do not help), a held-out set and the model's size.  In the worker,
the student's `Transformer` (exercise 7, on the student's own exercises 1-6)
is built and initialised with one fixed recipe (`initialise`), the optimizer
comes from the student's `make_optimizer`, and the student's `train` runs in
chunks on batches the judge sends.  Between chunks the worker returns the
trained weights, tensors only, by the contract's names; the judge loads them
into its OWN Transformer (`JudgeModel`: grader/reference/'s, PyTorch's layers
under the contract's names) and measures the held-out token accuracy itself,
with teacher forcing (its decoder is causal).  Nothing the worker computes
besides the weights is believed; the time is the judge's clock.  Pass:
accuracy >= target before the time budget runs out.  A Transformer that is
not the contract's (a wrong mask, a missing scale...) trains weights that do
not work in the judge's: the check fails, and the runner names the earlier
exercise that fails its own tests.

The budget is fair across machines: the judge times a fixed reference
workload itself, on this machine, just before training (its own training
step on PyTorch's nn.Transformer of the same size, batch, device, precision
and thread count; the median step) and allows

    budget = budget_factor x reference_steps x (seconds per reference step)

where `reference_steps` is how many steps the reference solution needs at
worst over seeds (measured: 150-250 on the CPU setting).  If the budget runs
out, the workload is timed again and the larger budget holds (the machine may
have got busier).  Only the time spent inside the student's `train` counts,
and no chunk is started that cannot finish within the budget at the pace so
far.  On the CPU both sides run single-threaded, so other load on the machine
disturbs the comparison less.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn as nn

from grader.reference.ex07_transformer import Transformer
from grader.training import reference
from grader.training.task import PAD, ReversalTask, exact_match, token_accuracy

SPARK = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class ModelSize:
    vocab: int = 16
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 1
    d_ff: int = 128
    dropout: float = 0.0
    max_len: int = 64


@dataclass(frozen=True)
class CheckConfig:
    device: str = "cpu"
    amp: str = "off"                     # "off", "bf16", "fp16"
    task: ReversalTask = field(default_factory=ReversalTask)
    model: ModelSize = field(default_factory=ModelSize)
    batch_size: int = 64
    warmup: int = 50
    factor: float = 0.5
    label_smoothing: float = 0.0
    max_grad_norm: float = 1.0
    target: float = 0.95                 # held-out token accuracy
    heldout: int = 256
    reference_steps: int = 250           # the reference solution's steps to target, worst seed
    budget_factor: float = 4.0
    min_budget_s: float = 4.0
    chunk_steps: int = 25
    max_steps: int = 3000                # a safety net; the budget ends a run first
    threads: int | None = 1              # CPU: one thread for the judge's workload and the
                                         # student's loop alike, so other load disturbs less

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.amp]

    @property
    def scaler_enabled(self) -> bool:
        return self.amp == "fp16"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["task"] = self.task.to_dict()
        return d


def default_amp(device: str) -> str:
    return "fp16" if device == "cuda" else "off"


def config_for(device: str, amp: str | None = None) -> CheckConfig:
    """The check's size on this device.  On a GPU a bigger batch costs
    nothing per step, and the reference then needs fewer steps."""
    amp = amp or default_amp(device)
    if amp not in ("off", "bf16", "fp16"):
        raise ValueError(f"unknown --amp {amp!r} (off, bf16 or fp16)")
    if device == "cuda":
        return CheckConfig(device="cuda", amp=amp, batch_size=256, reference_steps=250,
                           chunk_steps=25, min_budget_s=2.0, threads=None)
    return CheckConfig(device="cpu", amp=amp)


# ------------------------------------------------------------------ initialisation
def initialise(model: nn.Module, seed: int) -> None:
    """The one fixed recipe, so that the student's own init does not decide
    the outcome: Xavier-uniform on every matrix, zeros on every bias, ones on
    every other vector named `weight` (the LayerNorm gains); anything else
    (not in the contract) keeps the student's values."""
    generator = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                fan_out, fan_in = p.shape[0], math.prod(p.shape[1:])
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                p.copy_((torch.rand(p.shape, generator=generator, dtype=torch.float64) * 2 - 1)
                        .mul_(bound).to(p.dtype))
            elif name.endswith("bias"):
                p.zero_()
            elif name.endswith("weight"):
                p.fill_(1.0)


# ------------------------------------------------------------------ the judge's workload
class ReferenceSeq2Seq(nn.Module):
    """PyTorch's nn.Transformer with embeddings x sqrt(d), sinusoidal
    positions and a generator: the same size and work as the student's model."""

    def __init__(self, size: ModelSize):
        super().__init__()
        d = size.d_model
        self.d_model = d
        self.src_embed = nn.Embedding(size.vocab, d)
        self.tgt_embed = nn.Embedding(size.vocab, d)
        self.core = nn.Transformer(d, size.num_heads, size.num_layers, size.num_layers, size.d_ff,
                                   size.dropout, batch_first=True)
        self.generator = nn.Linear(d, size.vocab)
        pos = torch.arange(size.max_len, dtype=torch.float32).unsqueeze(1)
        div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
        pe = torch.zeros(size.max_len, d)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("pe", pe)

    def forward(self, src, tgt, src_key_padding_mask=None, tgt_key_padding_mask=None):
        scale = math.sqrt(self.d_model)
        s = self.src_embed(src) * scale + self.pe[: src.shape[1]]
        t = self.tgt_embed(tgt) * scale + self.pe[: tgt.shape[1]]
        causal = torch.triu(torch.ones(tgt.shape[1], tgt.shape[1], dtype=torch.bool,
                                       device=tgt.device), 1)
        out = self.core(s, t, tgt_mask=causal, src_key_padding_mask=src_key_padding_mask,
                        tgt_key_padding_mask=tgt_key_padding_mask,
                        memory_key_padding_mask=src_key_padding_mask)
        return self.generator(out)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class threads:
    """Run a block with `n` torch threads (None: unchanged)."""

    def __init__(self, n: int | None) -> None:
        self.n = n
        self.previous = None

    def __enter__(self):
        if self.n:
            self.previous = torch.get_num_threads()
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            torch.set_num_threads(self.previous)
        return False


def calibrate(config: CheckConfig, *, warmup_steps: int = 3, timed_steps: int = 10,
              seed: int = 0) -> float:
    """Seconds per step of the judge's own training step on the reference
    model, same size, batch, device, precision and threads as the check."""
    device = torch.device(config.device)
    with torch.random.fork_rng(devices=[]), threads(config.threads):
        torch.manual_seed(seed)
        model = ReferenceSeq2Seq(config.model).to(device)
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: reference.noam_lr(s + 1, config.model.d_model, config.warmup,
                                                   config.factor))
        scaler = torch.amp.GradScaler(device.type, enabled=config.scaler_enabled)
        stream = config.task.batches(config.batch_size, seed=seed + 99)
        batches = [tuple(t.to(device) for t in next(stream)) for _ in range(warmup_steps + timed_steps)]
        times = []
        for i, batch in enumerate(batches):
            _sync(config.device)
            t0 = time.perf_counter()
            reference.train_step(model, batch, optimizer, scaler, scheduler,
                                 max_grad_norm=config.max_grad_norm, amp_dtype=config.amp_dtype,
                                 pad_id=PAD, label_smoothing=config.label_smoothing)
            _sync(config.device)
            if i >= warmup_steps:
                times.append(time.perf_counter() - t0)
    return statistics.median(times)


def amp_overflow_advice(message: str) -> str:
    """What to tell a student whose stack overflowed float16 under fp16
    autocast: a mask filled with -1e9 (fine in float32 and float64)."""
    if "c10::Half without overflow" not in message:
        return ""
    return ("Under fp16 autocast the attention scores are float16, whose largest finite value is "
            "65504: a mask filled with a large finite number such as -1e9 cannot be stored "
            "(\"value cannot be converted to type c10::Half without overflow\"). Fill masked "
            "scores with float(\"-inf\") or torch.finfo(scores.dtype).min instead (in exercise "
            "2's masked_attention, or wherever your code fills masked scores).")


def budget_for(config: CheckConfig, seconds_per_step: float) -> float:
    return max(config.min_budget_s, config.budget_factor * config.reference_steps * seconds_per_step)


def sparkline(values: list[float], lo: float = 0.0, hi: float = 1.0) -> str:
    out = []
    for v in values:
        x = 0.0 if hi <= lo else min(1.0, max(0.0, (v - lo) / (hi - lo)))
        out.append(SPARK[min(len(SPARK) - 1, int(x * (len(SPARK) - 1) + 0.5))])
    return "".join(out)


# ------------------------------------------------------------------ the judge's model
class JudgeModel:
    """The judge's own Transformer of the check's size (the grader's
    reference exercise 7: PyTorch's layers under the contract's parameter
    names, its own positional table), loaded with weights the worker sends."""

    def __init__(self, size: ModelSize) -> None:
        with torch.random.fork_rng(devices=[]):
            self.model = Transformer(size.vocab, size.vocab, size.d_model, size.num_heads,
                                     size.num_layers, size.d_ff, 0.0, size.max_len)
        self.model.eval()
        self.shapes = {name: tuple(p.shape) for name, p in self.model.named_parameters()}

    def load(self, weights) -> str:
        """Copy the contract's parameters from `weights` ({name: tensor});
        "" when they all fit, else what is wrong."""
        if not isinstance(weights, dict):
            return f"the trained weights came back as {type(weights).__name__}, not by name"
        for name, shape in self.shapes.items():
            value = weights.get(name)
            if not isinstance(value, torch.Tensor):
                return (f"your Transformer has no parameter {name} (the contract's name), so "
                        "its trained weights cannot be checked")
            if tuple(value.shape) != shape or not value.is_floating_point():
                return f"your Transformer's {name} has shape {tuple(value.shape)}, not {shape}"
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                p.copy_(weights[name].to(p.dtype))
        return ""

    def predict(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Next-token predictions (n, T) under teacher forcing: one pass, the
        judge's decoder being causal."""
        with torch.no_grad():
            logits = self.model(src, tgt_in, src_key_padding_mask=src == PAD)
        return logits.argmax(-1)


def judge_evaluator(config: CheckConfig, held_src: torch.Tensor, held_in: torch.Tensor,
                    held_out: torch.Tensor):
    """weights -> (token accuracy, exact match, problem), by the judge alone."""
    judge = JudgeModel(config.model)

    def evaluate(weights) -> tuple[float, float, str]:
        problem = judge.load(weights)
        if problem:
            return 0.0, 0.0, problem
        predictions = judge.predict(held_src, held_in)
        return token_accuracy(predictions, held_out), exact_match(predictions, held_out), ""

    return evaluate


# ------------------------------------------------------------------ the check
@dataclass
class CheckResult:
    passed: bool
    reason: str
    device: str
    amp: str
    target: float
    accuracy: float = 0.0
    exact_match: float = 0.0
    steps: int = 0
    time_s: float = 0.0                  # inside the student's train()
    budget_s: float = 0.0
    wall_s: float = 0.0                  # the whole check, evaluation and calibration included
    seconds_per_reference_step: float = 0.0
    reference_steps: int = 0
    budget_factor: float = 0.0
    tokens: int = 0                      # target tokens (not padding) trained on
    tokens_per_s: float = 0.0
    parameters: int = 0
    curve: list = field(default_factory=list)   # [steps, seconds, accuracy]
    losses: list = field(default_factory=list)  # mean loss per chunk, as the student's train returned
    model: dict = field(default_factory=dict)
    recalibrated: bool = False
    mapping_seed: int = 0                # the run's token mapping (task.drawn)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sparkline"] = sparkline([c[2] for c in self.curve])
        return d


def run(client, config: CheckConfig, seed: int, *, run_procedure=None, clock=time.perf_counter,
        calibrate_fn=calibrate, evaluate_fn=None, budget_s: float | None = None) -> CheckResult:
    """Run the check against the worker behind `client` (the submission's
    own stack).  `evaluate_fn(config, held_src, held_in, held_out)` makes the
    judge's evaluator (default `judge_evaluator`).

    `budget_s` fixes the time budget instead of calibrating it on this
    machine (tests inject it, so that no verdict depends on how busy the
    machine is; `clock` and `calibrate_fn` are injectable for the same reason).

    A failure of the student's code propagates (error, timeout...) with the
    figures gathered so far attached as `exc.training_result`."""
    from grader.sandbox import client as sandbox

    run_procedure = run_procedure or sandbox.run_procedure
    started = clock()
    result = CheckResult(passed=False, reason="", device=config.device, amp=config.amp,
                         target=config.target, reference_steps=config.reference_steps,
                         budget_factor=config.budget_factor, model=asdict(config.model))
    try:
        if budget_s is not None:
            fixed = budget_s / (config.budget_factor * config.reference_steps)

            def calibrate_fn(config, seed=0):  # noqa: ARG001 - the injected budget, as a pace
                return fixed

            config = replace(config, min_budget_s=0.0)
        _run(client, config, seed, result, run_procedure, clock, calibrate_fn,
             evaluate_fn or judge_evaluator)
    except BaseException as exc:
        result.wall_s = clock() - started
        try:
            exc.training_result = result
        except AttributeError:  # pragma: no cover
            pass
        raise
    result.wall_s = clock() - started
    return result


def _run(client, config: CheckConfig, seed: int, result: CheckResult, run_procedure, clock,
         calibrate_fn, evaluate_fn) -> None:
    from grader.outcomes import StudentTimeout

    result.mapping_seed = seed + 31337
    task = config.task.drawn(result.mapping_seed)
    held_src, held_in, held_out = task.batch(config.heldout, torch.Generator().manual_seed(seed + 7919))
    evaluate_weights = evaluate_fn(config, held_src, held_in, held_out)
    problems: list[str] = []
    stream = task.batches(config.batch_size, seed=seed + 104729)

    # 1. The student's Transformer, initialised by the judge, and optimizer.
    spec = {"device": config.device, "seed": seed, "model": asdict(config.model),
            "warmup": config.warmup, "factor": config.factor, "scaler": config.scaler_enabled,
            "threads": config.threads}
    objects = run_procedure(client, "training:check_setup", spec, timeout=60)
    result.parameters = int(objects.get("parameters", 0)) if isinstance(objects, dict) else 0

    # 2. The budget, from the judge's own workload on this machine, now.
    per_step = calibrate_fn(config, seed=seed)
    budget = budget_for(config, per_step)
    result.seconds_per_reference_step, result.budget_s = per_step, budget

    def evaluate() -> float:
        weights = run_procedure(client, "training:check_weights", objects, timeout=60)
        accuracy, result.exact_match, problem = evaluate_weights(weights)
        if problem:
            problems.append(problem)
        return accuracy

    # 3. Train in chunks; after each, the judge measures the held-out accuracy.
    used = 0.0
    steps = 0
    while steps < config.max_steps:
        remaining = budget - used
        n = config.chunk_steps
        if steps:  # no more steps than fit in what is left, at the pace so far
            n = min(n, int(remaining / (used / steps)))
        if n < 1:
            if result.recalibrated:
                break
            # The machine may have got slower since the start: time the
            # reference workload again; the larger budget holds.
            result.recalibrated = True
            again = calibrate_fn(config, seed=seed)
            if again > per_step:
                result.seconds_per_reference_step = per_step = again
                result.budget_s = budget = budget_for(config, per_step)
            if result.accuracy >= config.target and used <= budget:
                result.passed = True
                break
            continue
        chunk = [next(stream) for _ in range(n)]
        t0 = clock()
        try:
            losses = run_procedure(
                client, "training:check_train", objects, chunk, steps=n,
                start_step=steps, amp_dtype=config.amp_dtype, pad_id=PAD,
                label_smoothing=config.label_smoothing, max_grad_norm=config.max_grad_norm,
                timeout=remaining + 0.5 * budget + 5.0)
        except StudentTimeout:  # far over the budget: the worker was stopped
            used += clock() - t0
            break
        used += clock() - t0
        steps += n
        result.tokens += sum(int((b[2] != PAD).sum()) for b in chunk)
        if isinstance(losses, list) and losses:
            finite = [x for x in losses if isinstance(x, float) and math.isfinite(x)]
            result.losses.append(round(statistics.fmean(finite), 4) if finite else None)
        result.accuracy = evaluate()
        result.steps, result.time_s = steps, used
        result.curve.append([steps, round(used, 3), round(result.accuracy, 4)])
        if problems:
            break
        if result.accuracy >= config.target and used <= budget:
            result.passed = True
            break

    result.steps, result.time_s = steps, used
    result.tokens_per_s = result.tokens / used if used > 0 else 0.0
    if problems:
        result.reason = problems[0]
    elif result.passed:
        result.reason = (f"reached {result.accuracy:.1%} held-out token accuracy (target "
                         f"{config.target:.0%}) after {steps} steps, in {used:.1f} s of a "
                         f"{budget:.1f} s budget")
    elif steps >= config.max_steps:
        result.reason = (f"did not reach {config.target:.0%} held-out token accuracy in "
                         f"{steps} steps: at accuracy {result.accuracy:.1%}")
    else:
        result.reason = (f"ran out of time at accuracy {result.accuracy:.1%} (target "
                         f"{config.target:.0%}): {steps} steps in {used:.1f} s, budget "
                         f"{budget:.1f} s")
