"""A fixed Report, built by hand (no grading), that the renderer, batch and
workflow tests share."""

from __future__ import annotations

from grader.results import ExerciseResult, Report, Status, TestResult


def T(name, status, points, max_points, **kw) -> TestResult:
    return TestResult(name=name, status=Status(status), points=points, max_points=max_points, **kw)


def fixed_report() -> Report:
    third = 10 / 3
    return Report(
        submission="exercises", seed=1234, grader_version="0.1.0", device="cpu", duration=42.5,
        exercises=[
            ExerciseResult(1, "attention", "Scaled dot-product attention", Status.PASSED, 10.0, 10.0, [
                T("matches_the_equation", "passed", 6.0, 6.0, duration=1.25,
                  description="output and weights equal softmax(q kᵀ / sqrt(d_k)) v."),
                T("weights_are_probabilities", "passed", 4.0, 4.0, duration=0.5),
            ], duration=2.0),
            ExerciseResult(2, "masks", "Causal and padding masks", Status.ERROR, third, 10.0, [
                T("causal_mask_is_upper_triangular", "passed", third, third, duration=0.2),
                T("masked_attention_matches_the_equation", "failed", 0.0, third, duration=1.5,
                  description="output and weights equal softmax(q kᵀ / sqrt(d_k) + M) v.",
                  message="weights differs from the reference: max abs error 0.0624054 (allowed 2e-05 "
                          "+ 0.0001·|expected|); at index (0, 1) got 0.263455, expected 0.325861; "
                          "shape (1, 2), dtype torch.float32",
                  example="Falsifying example: test(\n    case=AttentionCase(batch=(), lq=1, lk=2, "
                          "d_k=1, d_v=1, dtype=float32, seed=0),\n)",
                  hint="The mask was applied after the softmax: masked weights must be exactly 0 "
                       "and each row must still sum to 1."),
                T("masked_self_attention_runs", "error", 0.0, third, duration=0.75,
                  description="MaskedSelfAttention(x, mask) runs for any leading dims.",
                  message="IndexError: too many indices for tensor of dimension 2",
                  traceback='  File "ex02_masks.py", line 143, in forward\n'
                            "    output, _ = masked_attention(q, k, v, mask)\n"
                            '  File "ex02_masks.py", line 82, in masked_attention\n'
                            "    scores = scores.masked_fill(mask[:, :, None], float('-inf'))\n"
                            "IndexError: too many indices for tensor of dimension 2"),
            ], duration=3.0, notes=["ex02_masks.py imports ex01_attention.py: if the failures come "
                                    "from there, run attn-grade exercise 1."],
                output="debug: scores | shape ``` (2, 3)\n\x1b[31mred\x1b[0m @someone"),
            ExerciseResult(3, "cross-attention", "Cross-attention", Status.NOT_IMPLEMENTED, 0.0, 10.0, [
                T("queries_come_from_x_q", "not_implemented", 0.0, 5.0,
                  message="Exercise 3: Attention.forward"),
                T("matches_the_equation", "not_implemented", 0.0, 5.0,
                  message="Exercise 3: Attention.forward"),
            ], duration=0.5),
            ExerciseResult(4, "multi-head", "Multi-head attention", Status.FORBIDDEN, 0.0, 10.0, [
                T("matches_torch", "forbidden", 0.0, 10.0,
                  message="uses torch.nn.functional.scaled_dot_product_attention, which this exercise "
                          "asks you to write yourself",
                  hint="Write it yourself from the equation; the built-in is what the exercise teaches."),
            ], duration=0.1),
            ExerciseResult(5, "positional-encoding", "Sinusoidal positional encoding", Status.CRASHED,
                           2.5, 10.0, [
                T("table_matches_the_formula", "passed", 2.5, 2.5, duration=0.3),
                T("forward_adds_the_table", "timeout", 0.0, 2.5, duration=10.0,
                  message="a call did not finish in 10 s"),
                T("odd_d_model_raises", "crashed", 0.0, 5.0,
                  message="the worker died: killed by signal 11 (SIGSEGV)\x00"),
            ], duration=10.5),
            ExerciseResult(8, "training", "AMP training loop", Status.NOT_RUN, 7.5, 10.0, [
                T("noam_lr_matches_the_paper", "passed", 7.5, 7.5, duration=0.1),
                T("training_check", "not_run", 0.0, 2.5, message="skipped: --no-train"),
            ], duration=0.2),
            ExerciseResult(6, "blocks", "Encoder and decoder layers", Status.ERROR, 0.0, 10.0, [
                T("encoder_layer_loads", "error", 0.0, 10.0,
                  message="syntax error in exercises/ex06_blocks.py, line 12: invalid syntax"),
            ], duration=0.0),
        ],
    )
