"""The training machinery (grader/training/): the synthetic task, the fixed
initialisation, the tiny scenarios, and the timed check's logic with an
injected clock, budget and evaluator (no test times anything).
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from grader.outcomes import StudentTimeout
from grader.training import check, task, tiny


# ---------------------------------------------------------------- the task
def test_reversal_task_batches_are_consistent():
    t = task.ReversalTask(vocab=10, min_len=2, max_len=6)
    src, tgt_in, tgt_out = t.batch(50, torch.Generator().manual_seed(0))
    for s, i, o in zip(src, tgt_in, tgt_out):
        n = int((s != task.PAD).sum()) - 1                      # symbols, EOS excluded
        assert 2 <= n <= 6 and s[n] == task.EOS
        assert torch.equal(o[:n], s[:n].flip(0)) and o[n] == task.EOS
        assert i[0] == task.BOS and torch.equal(i[1:n + 1], o[:n])
        assert (o[n + 1:] == task.PAD).all() and (i[n + 2:] == task.PAD).all()
    assert task.token_accuracy(tgt_out, tgt_out) == 1.0
    assert task.token_accuracy(tgt_out[:, :1], tgt_out) < 0.5   # missing positions count as wrong
    assert task.exact_match(tgt_out, tgt_out) == 1.0


def test_initialise_is_one_fixed_recipe():
    a, b = (torch.nn.Transformer(8, 2, 1, 1, 16, batch_first=True) for _ in range(2))
    torch.nn.init.normal_(b.encoder.layers[0].linear1.weight)   # a student's own init...
    check.initialise(a, 3)
    check.initialise(b, 3)                                       # ...does not matter
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name
        if name.endswith("bias"):
            assert not p.any()


def test_tiny_reference_scenarios_run():
    """The judge's scenarios behave: the reference passes its own comparison."""
    from grader.training import reference

    config = tiny.scenario(seed=3, steps=3, poison_steps=[2],
                           scaler={"enabled": True, "init_scale": 256.0, "growth_interval": 1})
    record = tiny.drive(config, reference.train_step)
    assert [s["scale"] for s in record["steps"]] == [512.0, 256.0, 512.0]   # skipped step halves
    before, after = record["steps"][0]["params"], record["steps"][1]["params"]
    assert all(torch.equal(before[n], after[n]) for n in before)           # ...and changes nothing
    start = tiny.build(config)[0].out.weight.detach()
    clip = tiny.drive(config, lambda *a, **k: reference.train_step(*a, mistake="clip_before_unscale", **k))
    moved = (before["out.weight"] - start).abs().max()
    assert (clip["steps"][0]["params"]["out.weight"] - start).abs().max() < moved / 100


# ---------------------------------------------------------------- the check's machinery
class FakeWorker:
    """Stands in for the worker: accuracy grows with the steps trained, each
    step costing `step_s` of fake time."""

    def __init__(self, step_s: float, accuracy_per_step: float = 0.005):
        self.now = 0.0
        self.step_s = step_s
        self.rate = accuracy_per_step
        self.steps = 0
        self.calls = []

    def clock(self):
        return self.now

    def __call__(self, client, name, *args, timeout=None, **kwargs):
        self.calls.append(name)
        if name == "training:check_setup":
            return {"model": object(), "parameters": 123}
        if name == "training:check_train":
            steps = kwargs["steps"]
            if steps * self.step_s > timeout:
                self.now += timeout
                raise StudentTimeout("too slow")
            self.now += steps * self.step_s
            self.steps += steps
            return [1.0] * steps
        if name == "training:check_weights":
            return {"steps": torch.tensor(float(self.steps))}
        raise AssertionError(name)

    def evaluator(self, config, held_src, held_in, held_out):
        """Stands in for the judge's evaluation of the returned weights."""
        def evaluate(weights):
            steps = int(weights["steps"])
            right = torch.rand(held_out.shape, generator=torch.Generator().manual_seed(steps))
            predictions = torch.where(right < steps * self.rate, held_out, torch.full_like(held_out, -1))
            return task.token_accuracy(predictions, held_out), task.exact_match(predictions, held_out), ""
        return evaluate


def _run_fake(worker, calibrations, config=None, evaluate_fn=None):
    config = config or check.config_for("cpu")
    times = iter(calibrations)
    return check.run(None, config, seed=1, run_procedure=worker, clock=worker.clock,
                     calibrate_fn=lambda cfg, seed: next(times),
                     evaluate_fn=evaluate_fn or worker.evaluator)


def test_check_passes_within_the_budget():
    worker = FakeWorker(step_s=0.03)
    result = _run_fake(worker, [0.03])
    assert result.passed and result.accuracy >= 0.95 and result.time_s <= result.budget_s
    assert result.budget_s == pytest.approx(check.budget_for(check.config_for("cpu"), 0.03))
    assert result.curve[-1][0] == result.steps and "held-out token accuracy" in result.reason
    assert result.to_dict()["sparkline"]


def test_check_runs_out_of_time_with_a_twenty_times_slower_loop():
    worker = FakeWorker(step_s=0.03 * 20)
    result = _run_fake(worker, [0.03, 0.03])
    assert not result.passed
    assert result.reason.startswith(f"ran out of time at accuracy {result.accuracy:.1%}")
    assert result.recalibrated and result.time_s <= result.budget_s + 0.6
    assert result.steps * 0.6 <= result.budget_s + 1e-9 and result.accuracy < 0.95


def test_an_injected_budget_replaces_calibration():
    worker = FakeWorker(step_s=0.03)

    def never(cfg, seed):
        raise AssertionError("calibrated despite an injected budget")

    config = check.config_for("cpu")
    fast = check.run(None, config, seed=1, run_procedure=worker, clock=worker.clock,
                     calibrate_fn=never, evaluate_fn=worker.evaluator, budget_s=30.0)
    assert fast.passed and fast.budget_s == pytest.approx(30.0), fast.reason
    slow_worker = FakeWorker(step_s=0.6)
    slow = check.run(None, config, seed=1, run_procedure=slow_worker, clock=slow_worker.clock,
                     calibrate_fn=never, evaluate_fn=slow_worker.evaluator, budget_s=30.0)
    assert not slow.passed and slow.reason.startswith("ran out of time"), slow.reason
    assert slow.time_s <= 30.0 + 0.6 * config.chunk_steps


def test_check_recalibrates_when_the_machine_slows_down():
    # calibrated at 10 ms/step, but the machine slowed to 30 ms/step: the
    # second timing gives the larger budget and the loop gets there.
    worker = FakeWorker(step_s=0.03)
    result = _run_fake(worker, [0.001, 0.03])
    assert result.recalibrated and result.passed, result.reason
    assert result.seconds_per_reference_step == 0.03


# ---------------------------------------------------------------- the judge decides
SMALL = check.ModelSize(vocab=16, d_model=16, num_heads=2, num_layers=1, d_ff=32, max_len=16)


def test_the_judge_model_predicts_like_a_contract_transformer_with_its_weights():
    from tests.conftest import import_solution

    torch.manual_seed(3)
    student = import_solution("ex07_transformer").Transformer(
        SMALL.vocab, SMALL.vocab, SMALL.d_model, SMALL.num_heads, SMALL.num_layers, SMALL.d_ff,
        0.0, SMALL.max_len).eval()
    judge = check.JudgeModel(SMALL)
    weights = {k: v.clone() for k, v in student.state_dict().items()}
    assert judge.load(weights) == ""
    src, tgt_in, _ = task.ReversalTask().drawn(1).batch(32, torch.Generator().manual_seed(2))
    with torch.no_grad():
        theirs = student(src, tgt_in, src_key_padding_mask=src == task.PAD).argmax(-1)
    assert torch.equal(judge.predict(src, tgt_in), theirs)
    weights["encoder_layers.0.self_attn.Wq.weight"] = weights.pop("encoder_layers.0.self_attn.W_q.weight")
    assert "encoder_layers.0.self_attn.W_q.weight" in check.JudgeModel(SMALL).load(weights)


def test_weights_that_did_not_learn_fail_whatever_the_worker_says():
    """Only the returned weights count: a loop that trains nothing (or a
    forged one) gets the accuracy of untrained weights, measured by the judge."""
    untrained = dict(check.JudgeModel(SMALL).model.state_dict())

    class Untrained(FakeWorker):
        def __call__(self, client, name, *args, timeout=None, **kwargs):
            if name == "training:check_weights":
                return untrained
            return super().__call__(client, name, *args, timeout=timeout, **kwargs)

    worker = Untrained(step_s=0.03)
    config = dataclasses.replace(check.config_for("cpu"), model=SMALL, heldout=16, batch_size=4,
                                 reference_steps=50)
    result = _run_fake(worker, [0.03, 0.03], config, evaluate_fn=check.judge_evaluator)
    assert not result.passed and result.accuracy < 0.5, result.reason
    assert result.reason.startswith("ran out of time"), result.reason


def test_weights_without_the_contract_names_fail_with_the_name():
    class Renamed(FakeWorker):
        def __call__(self, client, name, *args, timeout=None, **kwargs):
            if name == "training:check_weights":
                state = dict(check.JudgeModel(SMALL).model.state_dict())
                state["out.weight"] = state.pop("generator.weight")
                return state
            return super().__call__(client, name, *args, timeout=timeout, **kwargs)

    config = dataclasses.replace(check.config_for("cpu"), model=SMALL, heldout=16, batch_size=4)
    result = _run_fake(Renamed(step_s=0.03), [0.03], config, evaluate_fn=check.judge_evaluator)
    assert not result.passed and "generator.weight" in result.reason and result.steps == 25


def test_each_run_draws_its_own_token_mapping():
    base = task.ReversalTask()
    one, two = base.drawn(1), base.drawn(2)
    assert one.mapping != two.mapping and one.mapping == base.drawn(1).mapping
    assert sorted(one.mapping) == list(range(3, base.vocab))
    src, _, tgt_out = one.batch(20, torch.Generator().manual_seed(0))
    plain_src, _, plain_out = base.batch(20, torch.Generator().manual_seed(0))
    assert torch.equal(src, plain_src)
    table = torch.tensor([0, 1, 2, *one.mapping])
    assert torch.equal(tgt_out, table[plain_out]) and not torch.equal(tgt_out, plain_out)


def test_cuda_settings_use_fp16_autocast_and_an_enabled_scaler():
    config = check.config_for("cuda")
    assert config.amp == "fp16" and config.amp_dtype is torch.float16 and config.scaler_enabled
    assert check.config_for("cuda", "off").amp_dtype is None
    assert not check.config_for("cuda", "bf16").scaler_enabled
    cpu = check.config_for("cpu")
    assert cpu.amp == "off" and cpu.amp_dtype is None and not cpu.scaler_enabled
    assert check.config_for("cpu", "bf16").amp_dtype is torch.bfloat16
    with pytest.raises(ValueError):
        check.config_for("cpu", "int8")


def test_calibration_runs_the_reference_workload_on_the_cpu():
    config = check.CheckConfig(batch_size=8, model=check.ModelSize(d_model=16, num_heads=2,
                                                                   num_layers=1, d_ff=16))
    threads = torch.get_num_threads()
    seconds = check.calibrate(config, warmup_steps=1, timed_steps=2)
    assert math.isfinite(seconds) and seconds > 0 and torch.get_num_threads() == threads
    bf16 = check.calibrate(dataclasses.replace(config, amp="bf16"), warmup_steps=1, timed_steps=1)
    assert bf16 > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_calibration_on_cuda_with_fp16_and_a_scaler():  # pragma: no cover - GPU machines only
    seconds = check.calibrate(check.config_for("cuda"), warmup_steps=2, timed_steps=3)
    assert math.isfinite(seconds) and seconds > 0


# ---------------------------------------------------------------- -1e9 under fp16 autocast
def test_the_amp_overflow_of_a_minus_1e9_mask_is_explained():
    l = torch.nn.Linear(4, 4)
    x = torch.randn(2, 3, 4)
    try:
        with torch.autocast("cpu", dtype=torch.float16):
            scores = l(x) @ l(x).transpose(-2, -1)
            scores.masked_fill(torch.ones(3, 3, dtype=torch.bool).triu(1), -1e9)
        message = "no overflow"
    except RuntimeError as exc:   # the very error a student's stack raises
        message = str(exc)
    advice = check.amp_overflow_advice(message)
    assert "-1e9" in advice and 'float("-inf")' in advice and "torch.finfo(scores.dtype).min" in advice
    assert check.amp_overflow_advice("shape mismatch") == ""
