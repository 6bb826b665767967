"""Exercise 5 · sinusoidal positional encoding.

Oracle: the paper's section 3.5, computed here in float64,

    PE[pos, 2i]   = sin(pos / 10000^(2i / d_model))
    PE[pos, 2i+1] = cos(pos / 10000^(2i / d_model)),

and PositionalEncoding(x) = dropout(x + PE[:L]).

Tolerances grow with the position: every correct float32 way of computing the
table (pow, exp/log, numpy, float64 then cast) rounds the angle pos·ω, so its
error grows like pos·2^-23 (about 3e-6 at position 64 and 4e-4 at position
5000 for the usual formulations).  Besides the formula, properties of the
paper: values in [-1, 1], distinct rows, each (sin, cos) pair turning by a
fixed rotation from one position to the next, and PE[p]·PE[p+k] depending
only on k.  Each property below names the mistake it is there to catch.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from grader import hints
from grader.hidden import checks, oracles
from grader.hidden import strategies as S
from grader.outcomes import StudentError
from grader.sandbox.client import run_procedure

TARGET = "ex05_positional_encoding:PositionalEncoding"
EPS32 = 2.0 ** -23
FAR = 5000          # the default max_len, where float32 angles are least accurate


# ------------------------------------------------------------------ helpers
def position_tolerance(positions: torch.Tensor) -> torch.Tensor:
    """What a correct float32 table may be off by at each position: the angle
    pos·ω is rounded (pos·2^-23 relative), and exp/log formulations add a few
    roundings more; 12 ulps of the position covers them all with room."""
    return 2e-6 + 12 * EPS32 * positions.to(torch.float64)


def _mistakes(max_len: int, d_model: int) -> dict[str, torch.Tensor]:
    """The usual slips' tables (small tables only: they are for the hint)."""
    if max_len > 512:
        return {}
    return {
        "pe_sin_cos_swapped": oracles.sinusoidal(max_len, d_model, layout="swapped"),
        "pe_concatenated": oracles.sinusoidal(max_len, d_model, layout="concatenated"),
        "pe_exponent_i": oracles.sinusoidal(max_len, d_model, exponent="i"),
        "pe_exponent_feature": oracles.sinusoidal(max_len, d_model, exponent="feature"),
        "pe_multiplied": oracles.sinusoidal(max_len, d_model, divide=False),
    }


def _diagnose(actual, candidates: dict, axis: int = -2) -> str:
    """The mistake whose table matches `actual` within the position tolerance."""
    if not isinstance(actual, torch.Tensor):
        return ""
    a = actual.detach().to("cpu", torch.float64)
    for key, candidate in candidates.items():
        if candidate.shape != a.shape:
            continue
        shape = [1] * a.dim()
        shape[axis] = a.shape[axis]
        allowed = position_tolerance(torch.arange(a.shape[axis])).reshape(shape) + 1e-5
        if bool(((a - candidate).abs() <= allowed).all()):
            return hints.hint(key)
    return ""


def assert_table_close(actual, expected: torch.Tensor, what: str, *, candidates=None,
                       extra_atol: float = 0.0, rtol: float = 0.0, hint: str = "") -> None:
    """`actual` equals `expected` (float64) within the position tolerance;
    positions run along dimension -2."""
    actual = checks.require_tensor(actual, what)
    if tuple(actual.shape) != tuple(expected.shape):
        checks.fail(f"{what}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}",
                    hint=hint or "Check the shape: (max_len, d_model), one row per position.")
    a = actual.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    if a.numel() == 0:
        return
    positions = torch.arange(a.shape[-2])
    allowed = position_tolerance(positions)[:, None] + extra_atol + rtol * e.abs()
    diff = (a - e).abs()
    diff = torch.where(torch.isnan(diff), torch.full_like(diff, float("inf")), diff)
    if bool((diff <= allowed).all()):
        return
    index = checks.index_of(int(torch.argmax(diff - allowed)), a.shape)
    pos, feature = index[-2], index[-1]
    found = hint or (_diagnose(actual, candidates() if callable(candidates) else candidates or {}))
    checks.fail(f"{what} differs from the reference: at position {pos}, feature {feature} got "
                f"{a[index].item():.6g}, expected {e[index].item():.6g} (error {diff[index].item():.3g}, "
                f"allowed {allowed[index].item():.3g} there; the allowance grows with the position); "
                f"max abs error {float(diff.max()):.3g}; shape {tuple(a.shape)}",
                hint=found, max_error=float(diff.max()),
                shown=(actual, expected, what, float(position_tolerance(positions).max()) + extra_atol, rtol, False))


def _table(student, max_len: int, d_model: int, *, check_dtype: bool = False) -> torch.Tensor:
    """The student's table; its dtype is checked by the formula tests only (one slip, one charge)."""
    what = f"sinusoidal_encoding({max_len}, {d_model})"
    table = checks.require_tensor(student.sinusoidal_encoding(max_len, d_model), what)
    if check_dtype and table.dtype != torch.float32:
        checks.fail(f"{what}: dtype {table.dtype}, expected torch.float32",
                    hint="Return the table as float32: compute it (in float64 if you like), then "
                         ".float() (torch.arange of integers gives int64, torch.float64 stays float64).")
    checks.assert_shape(table, (max_len, d_model), what)
    return table


def _module(student, d_model: int, max_len: int, dropout: float = 0.0, dtype=None):
    module, _ = run_procedure(student._client, "heads:build", TARGET, [d_model],
                              {"max_len": max_len, "dropout": dropout}, dtype=dtype)
    return module


def _pe_of(table: torch.Tensor) -> torch.Tensor:
    """The buffer as (max_len, d_model): a batch dimension of 1 is allowed,
    (1, max_len, d_model) as in the Annotated Transformer or (max_len, 1,
    d_model) as in PyTorch's tutorial."""
    if table.dim() == 3 and table.shape[0] == 1:
        return table[0]
    if table.dim() == 3 and table.shape[1] == 1:
        return table[:, 0]
    return table


def _expected_sum(x: torch.Tensor, module=None) -> torch.Tensor:
    """x + PE[:L] in float64.  With `module`, PE is the module's own pe buffer
    when it has one of the right shape: whether that table is right is the
    business of the table's own tests, so a wrong table is not charged twice."""
    L, d = x.shape[-2], x.shape[-1]
    table = oracles.sinusoidal(L, d)
    if module is not None:
        try:
            own = module.get("pe")
        except StudentError:
            own = None
        if isinstance(own, torch.Tensor) and not own.is_meta:
            own = _pe_of(own)
            if own.dim() == 2 and own.shape[0] >= L and own.shape[1] == d:
                table = own[:L].detach().to("cpu", torch.float64)
    return x.detach().to("cpu", torch.float64) + table


# ------------------------------------------------------------------ sinusoidal_encoding
@pytest.mark.weight(3)
@given(max_len=st.integers(1, 120), d_model=S.even_d_models(64))
def test_matches_the_formula(student, max_len, d_model):
    """sinusoidal_encoding(max_len, d_model) is the float32 (max_len, d_model) table
    PE[pos, 2i] = sin(pos / 10000^(2i/d_model)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d_model))."""
    table = _table(student, max_len, d_model, check_dtype=True)
    assert_table_close(table, oracles.sinusoidal(max_len, d_model), f"sinusoidal_encoding({max_len}, {d_model})",
                       candidates=lambda: _mistakes(max_len, d_model))


def test_matches_the_formula_up_to_position_5000(student):
    """the whole default table (5000 positions) matches, within a tolerance that grows with the position."""
    for d_model in (6, 64):
        table = _table(student, FAR, d_model, check_dtype=True)
        assert_table_close(table, oracles.sinusoidal(FAR, d_model), f"sinusoidal_encoding({FAR}, {d_model})",
                           candidates=lambda: _far_mistakes(d_model))


def _far_mistakes(d_model: int) -> dict[str, torch.Tensor]:
    return {
        "pe_sin_cos_swapped": oracles.sinusoidal(FAR, d_model, layout="swapped"),
        "pe_concatenated": oracles.sinusoidal(FAR, d_model, layout="concatenated"),
        "pe_exponent_i": oracles.sinusoidal(FAR, d_model, exponent="i"),
        "pe_exponent_feature": oracles.sinusoidal(FAR, d_model, exponent="feature"),
    }


def test_rejects_an_odd_d_model(student):
    """sinusoidal_encoding(max_len, d_model) raises ValueError when d_model is odd."""
    for d_model in (1, 3, 7, 15):
        try:
            student.sinusoidal_encoding(10, d_model)
        except StudentError as exc:
            checks.assert_true(exc.type_name == "ValueError",
                               f"sinusoidal_encoding(10, {d_model}) raised {exc.type_name}: {exc.message}; "
                               f"expected ValueError",
                               hint="Check `d_model % 2 != 0` first and `raise ValueError(...)`: "
                                    "(sin, cos) pairs need an even d_model.")
            continue
        checks.fail(f"sinusoidal_encoding(10, {d_model}) returned a table; expected ValueError "
                    f"(d_model must be even: the features come in (sin, cos) pairs)",
                    hint="Check `d_model % 2 != 0` first and `raise ValueError(...)`.")


def test_sine_on_even_features_cosine_on_odd(student):
    """PE[0] = [0, 1, 0, 1, ...] (sin 0, cos 0), and each pair (2i, 2i+1) is the sine and cosine of one
    angle: PE[p, 2i]² + PE[p, 2i+1]² = 1 (interleaved, not concatenated halves)."""
    max_len, d_model = 50, 8
    table = _table(student, max_len, d_model).double()
    first = torch.tensor([0.0, 1.0] * (d_model // 2), dtype=torch.float64)
    found = _diagnose(table, _mistakes(max_len, d_model))
    checks.assert_close(table[0], first, "PE[0] (sin 0 on even features, cos 0 on odd ones)",
                        atol=1e-6, rtol=0, hint=found or hints.hint("pe_sin_cos_swapped"))
    norms = table[:, 0::2] ** 2 + table[:, 1::2] ** 2
    checks.assert_close(norms, torch.ones_like(norms),
                        "PE[p, 2i]² + PE[p, 2i+1]² (a sine and a cosine of the same angle)",
                        atol=1e-5, rtol=0, hint=found or hints.hint("pe_not_interleaved"))


def test_values_are_bounded_and_rows_distinct(student):
    """every value lies in [-1, 1], and no two positions get the same encoding."""
    max_len, d_model = 500, 16
    table = _table(student, max_len, d_model).double()
    found = _diagnose(table, _mistakes(max_len, d_model))
    largest = float(table.abs().max())
    checks.assert_true(largest <= 1 + 1e-6,
                       f"sinusoidal_encoding({max_len}, {d_model}) has a value {largest:.6g} outside [-1, 1]",
                       hint=found or "Every entry is a sine or a cosine: apply torch.sin / torch.cos to the angle.")
    distances = torch.cdist(table, table) + torch.eye(max_len, dtype=torch.float64) * 10
    closest = float(distances.min())
    i, j = divmod(int(distances.argmin()), max_len)
    checks.assert_true(closest > 1e-3,
                       f"positions {i} and {j} get (almost) the same encoding (distance {closest:.3g})",
                       hint=found or "Each row depends on its own position pos: use the position, "
                                     "not the feature index, in the angle.")


@S.examples(10)
@given(d_model=S.even_d_models(32), k=st.integers(1, 30))
def test_each_pair_turns_by_a_fixed_rotation(student, d_model, k):
    """for each frequency pair (2i, 2i+1), PE[p + k] is the same linear map (a rotation by k·ω_i) of PE[p]
    for every position p: what makes relative positions easy to attend to."""
    max_len = 128
    table = _table(student, max_len, d_model).double()
    for i in range(d_model // 2):
        pair = table[:, 2 * i:2 * i + 2]
        before, after = pair[:-k], pair[k:]
        rotation = torch.linalg.lstsq(before, after).solution                   # (2, 2)
        residual = float((before @ rotation - after).abs().max())
        orthogonal = float((rotation.T @ rotation - torch.eye(2, dtype=torch.float64)).abs().max())
        if residual > 1e-4 or orthogonal > 1e-3:
            found = _diagnose(table, _mistakes(max_len, d_model))
            checks.fail(f"features ({2 * i}, {2 * i + 1}) at position p + {k} are not a fixed rotation "
                        f"of the same features at position p (best linear fit off by {residual:.3g}; "
                        f"its distance from a rotation {orthogonal:.3g})",
                        hint=found or hints.hint("pe_not_interleaved"))


def test_dot_product_depends_only_on_the_offset(student):
    """PE[p]·PE[p + k] = Σ_i cos(k·ω_i) is the same for every position p."""
    max_len, d_model = 100, 16
    table = _table(student, max_len, d_model).double()
    for k in range(0, 12):
        dots = (table[: max_len - k] * table[k:]).sum(-1)
        spread = float(dots.max() - dots.min())
        if spread > 1e-3:
            found = _diagnose(table, _mistakes(max_len, d_model))
            checks.fail(f"PE[p]·PE[p + {k}] depends on p (it ranges from {float(dots.min()):.4g} to "
                        f"{float(dots.max()):.4g}); it should depend only on the offset {k}",
                        hint=found or hints.hint("pe_exponent_feature"))


# ------------------------------------------------------------------ PositionalEncoding
def test_the_table_is_a_buffer(ctx, student):
    """PositionalEncoding registers the table as a buffer named pe (not a parameter, not a plain
    attribute): it is never trained and it moves with .to()."""
    d_model, max_len = 8, 40
    module = _module(student, d_model, max_len)
    parameters = run_procedure(ctx.client, "common:parameter_names", module)
    buffers = dict(run_procedure(ctx.client, "common:buffer_names", module))
    if any(name == "pe" or name.endswith(".pe") for name, _, _ in parameters):
        checks.fail("pe is an nn.Parameter: the optimizer would train it", hint=hints.hint("pe_not_buffer"))
    checks.assert_true("pe" in buffers,
                       f"PositionalEncoding has no buffer named pe (its buffers: {sorted(buffers) or 'none'})",
                       hint=hints.hint("pe_not_buffer"))
    checks.assert_true(not parameters,
                       f"PositionalEncoding has parameters {[n for n, _, _ in parameters]}; nothing in it is learned",
                       hint=hints.hint("pe_not_buffer"))
    shape = tuple(buffers["pe"])
    checks.assert_true(shape in ((max_len, d_model), (1, max_len, d_model), (max_len, 1, d_model)),
                       f"the pe buffer has shape {shape}, expected ({max_len}, {d_model})",
                       hint="pe holds sinusoidal_encoding(max_len, d_model).")
    pe = _pe_of(checks.require_tensor(module.get("pe"), "pe"))
    assert_table_close(pe, oracles.sinusoidal(max_len, d_model), "the pe buffer",
                       candidates=lambda: _mistakes(max_len, d_model))
    module.call("to", torch.device("meta"))
    moved = checks.require_tensor(module.get("pe"), "pe")
    checks.assert_true(moved.is_meta, f"after .to('meta') the pe buffer is still on {moved.device}",
                       hint=hints.hint("pe_not_buffer"))


@pytest.mark.weight(2)
@given(case=S.positional_cases())
@S.first("positional")
def test_forward_adds_the_table(student, case):
    """PositionalEncoding(d_model, max_len)(x) = x + pe[:L] (dropout 0), for L <= max_len, pe being its
    table (whose values the table's own properties check)."""
    module = _module(student, case.d_model, case.max_len)
    x = case.input()
    out = module(x)
    atol, rtol = checks.tolerance(case.dtype)
    assert_table_close(out, _expected_sum(x, module), "PositionalEncoding output (x + pe[:L])",
                       extra_atol=atol, rtol=rtol,
                       candidates=lambda: {key: x.double() + table for key, table in
                                           _mistakes(case.length, case.d_model).items()})


ALL_FLOAT_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


@given(case=S.positional_cases(max_length=10, max_d=8), dtype=st.sampled_from(ALL_FLOAT_DTYPES),
       convert=st.booleans())
@example(case=S.PositionalCase(batch=2, length=5, d_model=6, max_len=8, dtype=torch.float32, seed=1),
         dtype=torch.bfloat16, convert=False)
@example(case=S.PositionalCase(batch=2, length=5, d_model=6, max_len=8, dtype=torch.float32, seed=2),
         dtype=torch.float16, convert=False)
@example(case=S.PositionalCase(batch=1, length=3, d_model=4, max_len=3, dtype=torch.float32, seed=3),
         dtype=torch.float64, convert=True)
def test_keeps_the_dtype_and_device(student, device, case, dtype, convert):
    """the output is in x's dtype — float32, float64, bfloat16 or float16, the module converted to it
    (.to(dtype)) or left in float32 — on x's device, and equals x + pe[:L] at that dtype's tolerance."""
    module = _module(student, case.d_model, case.max_len, dtype=dtype if convert else None)
    module.call("to", device)
    x = case.input(device).to(dtype)
    out = checks.require_tensor(module(x), "PositionalEncoding output")
    checks.assert_dtype(out, dtype, f"PositionalEncoding output for {_dtype_name(dtype)} input"
                        + ("" if convert else " (the module left in float32)"))
    checks.assert_true(out.device.type == device.type,
                       f"the output is on {out.device}, the input on {device}",
                       hint="Keep the table as a buffer (it follows .to(device)), or move it with "
                            ".to(x.device).")
    if device.type != "meta":
        checks.assert_close(out.cpu(), _expected_sum(x.cpu(), module).to(torch.float64),
                            f"PositionalEncoding output for {_dtype_name(dtype)} input (x + pe[:L])")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def test_rejects_sequences_longer_than_max_len(student):
    """L == max_len works; L > max_len raises ValueError (not a broadcasting error)."""
    d_model, max_len = 6, 8
    module = _module(student, d_model, max_len)
    x = S.randn((2, max_len, d_model), 3, torch.float32)
    try:
        out = module(x)
    except StudentError as exc:
        checks.fail(f"a sequence of exactly max_len = {max_len} positions raised {exc.type_name}: {exc.message}",
                    hint="Only L > max_len is too long (check `L > max_len`, not `>=`).")
    assert_table_close(out, _expected_sum(x, module), "PositionalEncoding output for L = max_len",
                       extra_atol=2e-5, rtol=1e-4)
    longer = S.randn((2, max_len + 1, d_model), 4, torch.float32)
    try:
        module(longer)
    except StudentError as exc:
        checks.assert_true(exc.type_name == "ValueError",
                           f"a sequence of {max_len + 1} > max_len = {max_len} positions raised "
                           f"{exc.type_name}: {exc.message}; expected ValueError",
                           hint="Check `x.size(1) > max_len` in forward and raise ValueError with a message.")
        return
    checks.fail(f"a sequence of {max_len + 1} > max_len = {max_len} positions was accepted; expected ValueError",
                hint="Check `x.size(1) > max_len` in forward and raise ValueError.")


def test_dropout_only_in_training(student):
    """with dropout p: in train() mode each entry of x + PE[:L] is either zeroed or scaled by 1/(1-p);
    in eval() mode the output is exactly x + PE[:L]."""
    d_model, max_len, p = 16, 64, 0.5
    module = _module(student, d_model, max_len, dropout=p)
    x = S.randn((4, 32, d_model), 11, torch.float32)
    expected = _expected_sum(x, module)
    module.call("eval")
    evaluated = checks.require_tensor(module(x), "the output in eval() mode")
    dropped = tuple(evaluated.shape) == tuple(expected.shape) and \
        float((evaluated == 0).double().mean()) > 0.05
    assert_table_close(evaluated, expected, "the output in eval() mode", extra_atol=2e-5, rtol=1e-4,
                       hint=hints.hint("pe_dropout_in_eval") if dropped else "")
    module.call("train")
    trained = checks.require_tensor(module(x), "the output in train() mode").detach().to(torch.float64)
    checks.assert_shape(trained, expected.shape, "the output in train() mode")
    zero = trained == 0
    scaled = (trained - expected / (1 - p)).abs() <= 1e-4 + 1e-4 * expected.abs()
    unchanged = (trained - expected).abs() <= 1e-4 + 1e-4 * expected.abs()
    share = float(zero.double().mean())
    checks.assert_true(not bool(unchanged.all()),
                       "in train() mode with dropout=0.5 the output is x + PE[:L], untouched: no dropout",
                       hint="Apply self.dropout (nn.Dropout(dropout)) to x + pe[:L].")
    checks.assert_true(bool((zero | scaled).all()),
                       "in train() mode some entries are neither 0 nor (x + PE) / (1 - p)",
                       hint=hints.hint("pe_dropout_placement"))
    checks.assert_true(0.3 <= share <= 0.7,
                       f"{share:.0%} of the entries are dropped with dropout=0.5",
                       hint="Pass the dropout probability to nn.Dropout(p).")
