"""Hypothesis strategies for the hidden tests (one module, plural names).

Strategies draw small *specifications* (shapes, dtype, a seed), not tensors:
the tensors are made from the seed by the test.  So a shrunk failing example
reads like `AttentionCase(batch=(2,), lq=2, lk=3, d_k=2, d_v=1, dtype=float32, seed=0)`
and reproduces exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import HealthCheck, Phase, example, settings
from hypothesis import strategies as st

# The settings every hidden test runs with.  Explicit `@examples(n)` settings
# derive from this object, never from whatever profile happens to be loaded
# when a test module is imported.
GRADING = settings(
    max_examples=20,
    deadline=None,                 # worker round trips vary; timeouts are the sandbox's job
    database=None,                 # never write .hypothesis/ anywhere
    print_blob=False,
    report_multiple_bugs=False,    # one clear failure, shrunk
    suppress_health_check=list(HealthCheck),
    # No "explain" phase: it re-runs the failing example many times (each a
    # worker round trip) and its notes point at the grader's own lines.
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
)


def grading_settings(max_examples: int, *, shrink: bool = True) -> settings:
    phases = GRADING.phases if shrink else (Phase.explicit, Phase.reuse, Phase.generate)
    return settings(GRADING, max_examples=max_examples, phases=phases)


def examples(n: int, *, shrink: bool = True):
    """`@examples(10)`: this property runs at most n examples.

    It only records the intent: the hidden tests' conftest gives every
    property its settings when a grading run collects it (`@given` would
    otherwise freeze whatever profile was loaded when the module was first
    imported, and a module is imported once per process).  shrink=False for
    properties where every example builds a model: the first failing case is
    reported (hypothesis tries simple cases first)."""
    def record(test):
        test._attn_grade_examples = (n, shrink)
        return test
    return record

FLOAT_DTYPES = (torch.float32, torch.float64)

# Multipliers of q that make attention scores of size ~1e2..1e3: exp() of them
# overflows in float32 (above ~88) and float64 (above ~709).
LARGE_LOGITS = (30.0, 300.0)


def dtypes() -> st.SearchStrategy[torch.dtype]:
    return st.sampled_from(FLOAT_DTYPES)


def seeds() -> st.SearchStrategy[int]:
    return st.integers(min_value=0, max_value=2**16)


def batch_shapes(max_dims: int = 2, max_size: int = 3) -> st.SearchStrategy[tuple[int, ...]]:
    """0 to `max_dims` leading batch dimensions."""
    return st.lists(st.integers(1, max_size), min_size=0, max_size=max_dims).map(tuple)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def randn(shape, seed: int, dtype: torch.dtype = torch.float64, scale: float = 1.0) -> torch.Tensor:
    return (torch.randn(tuple(shape), generator=generator(seed), dtype=torch.float64) * scale).to(dtype)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# ------------------------------------------------------------------ attention
@dataclass(frozen=True)
class AttentionCase:
    """q (*batch, lq, d_k), k (*batch, lk, d_k), v (*batch, lk, d_v)."""

    batch: tuple[int, ...]
    lq: int
    lk: int
    d_k: int
    d_v: int
    dtype: torch.dtype
    seed: int

    def __repr__(self) -> str:
        return (f"AttentionCase(batch={self.batch}, lq={self.lq}, lk={self.lk}, d_k={self.d_k}, "
                f"d_v={self.d_v}, dtype={_dtype_name(self.dtype)}, seed={self.seed})")

    def tensors(self, device="cpu"):
        q = randn((*self.batch, self.lq, self.d_k), self.seed, self.dtype)
        k = randn((*self.batch, self.lk, self.d_k), self.seed + 1, self.dtype)
        v = randn((*self.batch, self.lk, self.d_v), self.seed + 2, self.dtype)
        return q.to(device), k.to(device), v.to(device)


@st.composite
def attention_cases(draw, *, square: bool = False, min_len: int = 1, max_len: int = 6,
                    max_batch_dims: int = 2, dtype=None) -> AttentionCase:
    """Shapes with 0-2 leading batch dimensions, Lq != Lk and d_k != d_v allowed."""
    lq = draw(st.integers(min_len, max_len))
    lk = lq if square else draw(st.integers(min_len, max_len))
    return AttentionCase(
        batch=draw(batch_shapes(max_batch_dims)), lq=lq, lk=lk,
        d_k=draw(st.integers(1, 8)), d_v=draw(st.integers(1, 8)),
        dtype=draw(dtypes()) if dtype is None else dtype, seed=draw(seeds()))


# ------------------------------------------------------------------ masks
@dataclass(frozen=True)
class MaskSpec:
    """A bool mask (True = NOT allowed) for an AttentionCase.

    kind: "causal" (square cases), "padding" (per-batch key lengths,
    broadcast over queries), "random"; layout: "full" (*batch, lq, lk),
    "shared" (lq, lk) broadcast over the batch, "keys" (*batch, 1, lk).
    Never masks a whole row.
    """

    kind: str
    layout: str
    seed: int

    def __repr__(self) -> str:
        return f"MaskSpec(kind={self.kind!r}, layout={self.layout!r}, seed={self.seed})"

    def build(self, case: AttentionCase, device="cpu") -> torch.Tensor:
        g = generator(self.seed)
        batch = case.batch if self.layout != "shared" else ()
        if self.kind == "causal":
            base = torch.triu(torch.ones(case.lq, case.lk, dtype=torch.bool), diagonal=1)
            mask = base.expand(*batch, case.lq, case.lk).clone()
        elif self.kind == "padding":
            lengths = torch.randint(1, case.lk + 1, batch or (1,), generator=g)
            if not batch:
                lengths = lengths.reshape(())
            keys = torch.arange(case.lk) >= lengths[..., None]
            mask = keys.unsqueeze(-2)                                # (*batch, 1, lk)
            if self.layout == "full":
                mask = mask.expand(*batch, case.lq, case.lk).clone()
        else:
            rows = 1 if self.layout == "keys" else case.lq
            mask = torch.rand(*batch, rows, case.lk, generator=g) < 0.5
            keep = torch.randint(0, case.lk, (*batch, rows), generator=g)
            mask.scatter_(-1, keep.unsqueeze(-1), False)             # one allowed key per row
        return mask.to(device)


@st.composite
def masks(draw, case: AttentionCase, kinds=("causal", "padding", "random")) -> MaskSpec:
    usable = [k for k in kinds if k != "causal" or case.lq == case.lk]
    kind = draw(st.sampled_from(usable))
    layouts = {"causal": ("shared", "full"), "padding": ("keys", "full"),
               "random": ("full", "shared", "keys")}[kind]
    return MaskSpec(kind, draw(st.sampled_from(layouts)), draw(seeds()))


@st.composite
def masked_attention_cases(draw, *, square=None, kinds=("causal", "padding", "random"),
                           min_len: int = 2, **kwargs):
    """An attention case and a mask for it (with at least one masked entry
    most of the time: lengths start at 2)."""
    if square is None:
        square = draw(st.booleans())
    case = draw(attention_cases(square=square, min_len=min_len, **kwargs))
    return case, draw(masks(case, kinds))


# ------------------------------------------------------------------ self-attention
@dataclass(frozen=True)
class SelfAttentionCase:
    """x (*batch, length, d_model) and three (d_model, d_model) projection weights."""

    batch: tuple[int, ...]
    length: int
    d_model: int
    dtype: torch.dtype
    seed: int

    def __repr__(self) -> str:
        return (f"SelfAttentionCase(batch={self.batch}, length={self.length}, "
                f"d_model={self.d_model}, dtype={_dtype_name(self.dtype)}, seed={self.seed})")

    def input(self, device="cpu") -> torch.Tensor:
        return randn((*self.batch, self.length, self.d_model), self.seed, self.dtype).to(device)

    def as_attention_case(self) -> AttentionCase:
        """The shapes of its attention (for building a MaskSpec's mask)."""
        return AttentionCase(self.batch, self.length, self.length, self.d_model, self.d_model,
                             self.dtype, self.seed)

    def weights(self) -> dict[str, torch.Tensor]:
        scale = self.d_model ** -0.5
        return {name: randn((self.d_model, self.d_model), self.seed + i, self.dtype, scale)
                for i, name in enumerate(("W_q.weight", "W_k.weight", "W_v.weight"), start=1)}


@st.composite
def self_attention_cases(draw, *, min_len: int = 1, max_len: int = 6, max_batch_dims: int = 2,
                         dtype=None) -> SelfAttentionCase:
    return SelfAttentionCase(
        batch=draw(batch_shapes(max_batch_dims)), length=draw(st.integers(min_len, max_len)),
        d_model=draw(st.integers(1, 8)),
        dtype=draw(dtypes()) if dtype is None else dtype, seed=draw(seeds()))


# ------------------------------------------------------------------ exercise 2: masks
@dataclass(frozen=True)
class PaddingCase:
    """lengths (B,) long, each in 1..max_len (a sequence is never all padding)."""

    lengths: tuple[int, ...]
    max_len: int

    def __repr__(self) -> str:
        return f"PaddingCase(lengths={list(self.lengths)}, max_len={self.max_len})"

    def tensor(self, device="cpu") -> torch.Tensor:
        return torch.tensor(self.lengths, dtype=torch.long, device=device)


@st.composite
def padding_cases(draw, *, max_batch: int = 4, max_len: int = 7) -> PaddingCase:
    length = draw(st.integers(1, max_len))
    lengths = draw(st.lists(st.integers(1, length), min_size=1, max_size=max_batch))
    return PaddingCase(tuple(lengths), length)


@st.composite
def masked_self_attention_cases(draw, *, kinds=("causal", "padding", "random"), allow_none: bool = True,
                                min_len: int = 2, **kwargs):
    """A SelfAttentionCase and a MaskSpec for its (length, length) scores, or None."""
    case = draw(self_attention_cases(min_len=min_len, **kwargs))
    if allow_none and draw(st.booleans()) and draw(st.booleans()):
        return case, None
    return case, draw(masks(case.as_attention_case(), kinds))


# ------------------------------------------------------------------ exercise 3: cross-attention
@dataclass(frozen=True)
class CrossAttentionCase:
    """x_q (batch, lq, d_model); x_k and x_v (batch, lk, d_model): three
    DIFFERENT tensors, so keys taken from x_q or values taken from x_k show."""

    batch: int
    lq: int
    lk: int
    d_model: int
    dtype: torch.dtype
    seed: int

    def __repr__(self) -> str:
        return (f"CrossAttentionCase(batch={self.batch}, lq={self.lq}, lk={self.lk}, "
                f"d_model={self.d_model}, dtype={_dtype_name(self.dtype)}, seed={self.seed})")

    def inputs(self, device="cpu"):
        x_q = randn((self.batch, self.lq, self.d_model), self.seed, self.dtype)
        x_k = randn((self.batch, self.lk, self.d_model), self.seed + 1, self.dtype)
        x_v = randn((self.batch, self.lk, self.d_model), self.seed + 2, self.dtype)
        return x_q.to(device), x_k.to(device), x_v.to(device)

    def weights(self) -> dict[str, torch.Tensor]:
        scale = self.d_model ** -0.5
        return {name: randn((self.d_model, self.d_model), self.seed + i, self.dtype, scale)
                for i, name in enumerate(("W_q.weight", "W_k.weight", "W_v.weight"), start=11)}

    def attention_case(self) -> AttentionCase:
        """The same shapes as an AttentionCase (to build a MaskSpec for it)."""
        return AttentionCase(batch=(self.batch,), lq=self.lq, lk=self.lk, d_k=self.d_model,
                             d_v=self.d_model, dtype=self.dtype, seed=self.seed)


@st.composite
def cross_attention_cases(draw, *, square: bool = False, min_len: int = 1, max_len: int = 6,
                          min_batch: int = 1, max_batch: int = 3, min_d: int = 1, max_d: int = 8,
                          dtype=None) -> CrossAttentionCase:
    lq = draw(st.integers(min_len, max_len))
    lk = lq if square else draw(st.integers(min_len, max_len))
    return CrossAttentionCase(
        batch=draw(st.integers(min_batch, max_batch)), lq=lq, lk=lk,
        d_model=draw(st.integers(min_d, max_d)),
        dtype=draw(dtypes()) if dtype is None else dtype, seed=draw(seeds()))


# ------------------------------------------------------------------ exercise 4: multi-head attention
MHA_KINDS = ("self", "memory", "cross")          # key = value = query / key = value / all different
MHA_MASKS = ("none", "attn", "padding", "both")  # which of attn_mask, key_padding_mask are given


@dataclass(frozen=True)
class MultiHeadCase:
    """query (batch, lq, d_model), key and value (batch, lk, d_model) with
    d_model = num_heads * d_k; the four projections (with or without bias);
    masks as `masks` says, never hiding a whole row.

    kind "self": key and value ARE the query tensor (lk = lq); "memory": key
    and value are one tensor (encoder-decoder attention); "cross": three
    different tensors.  mask_style "causal" (square cases) or "random"."""

    batch: int
    lq: int
    lk: int
    num_heads: int
    d_k: int
    bias: bool
    kind: str
    masks: str
    mask_style: str
    dtype: torch.dtype
    seed: int

    @property
    def d_model(self) -> int:
        return self.num_heads * self.d_k

    def __repr__(self) -> str:
        return (f"MultiHeadCase(batch={self.batch}, lq={self.lq}, lk={self.lk}, "
                f"num_heads={self.num_heads}, d_k={self.d_k} (d_model={self.d_model}), "
                f"bias={self.bias}, kind={self.kind!r}, masks={self.masks!r}, "
                f"mask_style={self.mask_style!r}, dtype={_dtype_name(self.dtype)}, seed={self.seed})")

    def replace(self, **changes) -> "MultiHeadCase":
        from dataclasses import replace
        return replace(self, **changes)

    def inputs(self, device="cpu"):
        """(query, key, value); the same tensor object where `kind` says so."""
        query = randn((self.batch, self.lq, self.d_model), self.seed, self.dtype).to(device)
        if self.kind == "self":
            return query, query, query
        key = randn((self.batch, self.lk, self.d_model), self.seed + 1, self.dtype).to(device)
        if self.kind == "memory":
            return query, key, key
        value = randn((self.batch, self.lk, self.d_model), self.seed + 2, self.dtype).to(device)
        return query, key, value

    def weights(self) -> dict[str, torch.Tensor]:
        """A state dict for W_q, W_k, W_v, W_o (biases only when `bias`)."""
        d = self.d_model
        state = {}
        for i, name in enumerate(("W_q", "W_k", "W_v", "W_o")):
            state[f"{name}.weight"] = randn((d, d), self.seed + 11 + i, self.dtype, d ** -0.5)
            if self.bias:
                state[f"{name}.bias"] = randn((d,), self.seed + 21 + i, self.dtype, 0.5)
        return state

    def mask_tensors(self, device="cpu"):
        """(attn_mask (lq, lk) or None, key_padding_mask (batch, lk) or None)."""
        g = generator(self.seed + 101)
        attn = padding = None
        shortest = self.lk
        if self.masks in ("padding", "both"):
            lengths = torch.randint(1, self.lk + 1, (self.batch,), generator=g)
            if self.lk > 1:  # at least one sequence really is padded
                lengths[0] = int(torch.randint(1, self.lk, (1,), generator=g))
            padding = torch.arange(self.lk)[None, :] >= lengths[:, None]
            shortest = int(lengths.min())
        if self.masks in ("attn", "both"):
            if self.mask_style == "causal" and self.lq == self.lk:
                attn = torch.triu(torch.ones(self.lq, self.lk, dtype=torch.bool), diagonal=1)
            else:
                attn = torch.rand(self.lq, self.lk, generator=g) < 0.5
                keep = torch.randint(0, shortest, (self.lq,), generator=g)  # never pads
                attn[torch.arange(self.lq), keep] = False
        return (None if attn is None else attn.to(device),
                None if padding is None else padding.to(device))


@st.composite
def multi_head_cases(draw, *, heads=(1, 2, 4, 8), d_ks=(1, 2, 3), min_len: int = 1,
                     max_len: int = 5, min_batch: int = 1, max_batch: int = 3, kinds=MHA_KINDS,
                     masks=MHA_MASKS, bias=None, dtype=None) -> MultiHeadCase:
    """Multi-head cases.  Pass heads=(2, 4, 8), d_ks=(2, 3), min_len=2,
    min_batch=2 to be sure a head bug shows (a `.view` without transpose is
    invisible with one head or one position)."""
    kind = draw(st.sampled_from(kinds))
    lq = draw(st.integers(min_len, max_len))
    lk = lq if kind == "self" else draw(st.integers(min_len, max_len))
    return MultiHeadCase(
        batch=draw(st.integers(min_batch, max_batch)), lq=lq, lk=lk,
        num_heads=draw(st.sampled_from(heads)), d_k=draw(st.sampled_from(d_ks)),
        bias=draw(st.booleans()) if bias is None else bias, kind=kind,
        masks=draw(st.sampled_from(masks)),
        mask_style=draw(st.sampled_from(("causal", "random"))) if lq == lk else "random",
        dtype=draw(dtypes()) if dtype is None else dtype, seed=draw(seeds()))


# ------------------------------------------------------------------ exercise 5: positional encoding
def even_d_models(max_value: int = 64) -> st.SearchStrategy[int]:
    return st.integers(1, max_value // 2).map(lambda n: 2 * n)


@dataclass(frozen=True)
class PositionalCase:
    """x (batch, length, d_model) for PositionalEncoding(d_model, max_len)."""

    batch: int
    length: int
    d_model: int
    max_len: int
    dtype: torch.dtype
    seed: int

    def __repr__(self) -> str:
        return (f"PositionalCase(batch={self.batch}, length={self.length}, d_model={self.d_model}, "
                f"max_len={self.max_len}, dtype={_dtype_name(self.dtype)}, seed={self.seed})")

    def input(self, device="cpu") -> torch.Tensor:
        return randn((self.batch, self.length, self.d_model), self.seed, self.dtype).to(device)


@st.composite
def positional_cases(draw, *, max_length: int = 40, max_d: int = 32, dtype=None) -> PositionalCase:
    length = draw(st.integers(1, max_length))
    return PositionalCase(
        batch=draw(st.integers(1, 3)), length=length, d_model=draw(even_d_models(max_d)),
        max_len=length + draw(st.integers(0, 20)),
        dtype=draw(dtypes()) if dtype is None else dtype, seed=draw(seeds()))


# ------------------------------------------------------------------ exercises 6-7: layers, Transformer
def random_state(shapes: dict[str, tuple[int, ...]], seed: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Random values for a module's parameters, by name, at sensible scales:
    matrices ~ N(0, 1/fan_in), biases ~ N(0, 0.1²), LayerNorm gains 1 ± 0.3 and
    shifts ~ N(0, 0.3²) (so a swapped or shared LayerNorm shows), embeddings
    ~ N(0, 1/d_model)."""
    state = {}
    for i, (name, shape) in enumerate(sorted(shapes.items())):
        s = seed * 1009 + i
        leaf = name.rsplit(".", 1)[-1]
        is_norm = "norm" in name.rsplit(".", 2)[-2] if "." in name else False
        if "embed" in name and len(shape) == 2:
            value = randn(shape, s, dtype, shape[1] ** -0.5)
        elif is_norm and leaf == "weight":
            value = (1.0 + randn(shape, s, torch.float64, 0.3)).to(dtype)
        elif is_norm:
            value = randn(shape, s, dtype, 0.3)
        elif len(shape) >= 2:
            value = randn(shape, s, dtype, shape[-1] ** -0.5)
        else:
            value = randn(shape, s, dtype, 0.1)
        state[name] = value
    return state


def lengths_mask(lengths: list[int], max_len: int) -> torch.Tensor:
    """A padding mask (B, max_len): True at positions >= lengths[b]."""
    return torch.arange(max_len)[None, :] >= torch.tensor(lengths)[:, None]


@dataclass(frozen=True)
class LayerCase:
    """An encoder or decoder layer and its inputs: x (batch, tgt_len, d_model),
    memory (batch, src_len, d_model); tgt/src lengths for the padding masks
    (None: no padding mask)."""

    batch: int
    tgt_len: int
    src_len: int
    d_model: int
    num_heads: int
    d_ff: int
    tgt_lengths: tuple[int, ...] | None
    src_lengths: tuple[int, ...] | None
    causal: bool
    dtype: torch.dtype
    seed: int

    def __repr__(self) -> str:
        return (f"LayerCase(batch={self.batch}, tgt_len={self.tgt_len}, src_len={self.src_len}, "
                f"d_model={self.d_model}, num_heads={self.num_heads}, d_ff={self.d_ff}, "
                f"tgt_lengths={self.tgt_lengths}, src_lengths={self.src_lengths}, "
                f"causal={self.causal}, dtype={_dtype_name(self.dtype)}, seed={self.seed})")

    def x(self) -> torch.Tensor:
        return randn((self.batch, self.tgt_len, self.d_model), self.seed + 11, self.dtype)

    def memory(self) -> torch.Tensor:
        return randn((self.batch, self.src_len, self.d_model), self.seed + 12, self.dtype)

    def tgt_padding(self) -> torch.Tensor | None:
        return None if self.tgt_lengths is None else lengths_mask(list(self.tgt_lengths), self.tgt_len)

    def src_padding(self) -> torch.Tensor | None:
        return None if self.src_lengths is None else lengths_mask(list(self.src_lengths), self.src_len)

    def tgt_mask(self) -> torch.Tensor | None:
        if not self.causal:
            return None
        return torch.triu(torch.ones(self.tgt_len, self.tgt_len, dtype=torch.bool), diagonal=1)


@st.composite
def layer_cases(draw, *, min_len: int = 1, max_len: int = 5, padding: bool | None = None,
                causal: bool | None = None, dtype=None, min_d_model: int = 2) -> LayerCase:
    """Small layers (d_model 2-8, 1-4 heads of 2-3 features); padding masks
    most of the time (lengths >= 1, so no query ever has every key masked)."""
    num_heads = draw(st.sampled_from((1, 2, 2, 4)))
    per_head = [p for p in (2, 3, 4, 6) if num_heads * p >= min_d_model][:2]
    d_model = num_heads * draw(st.sampled_from(per_head))
    batch = draw(st.integers(1, 3))
    tgt_len = draw(st.integers(min_len, max_len))
    src_len = draw(st.integers(min_len, max_len))

    def lengths(total):
        use = draw(st.sampled_from((True, True, False))) if padding is None else padding
        if not use:
            return None
        return tuple(draw(st.lists(st.integers(1, total), min_size=batch, max_size=batch)))

    return LayerCase(
        batch=batch, tgt_len=tgt_len, src_len=src_len, d_model=d_model, num_heads=num_heads,
        d_ff=draw(st.sampled_from((4, 8, 16))), tgt_lengths=lengths(tgt_len),
        src_lengths=lengths(src_len),
        causal=draw(st.sampled_from((True, True, False))) if causal is None else causal,
        dtype=draw(dtypes()) if dtype is None else dtype, seed=draw(seeds()))


@dataclass(frozen=True)
class TransformerCase:
    """A small Transformer and a batch for it: src (batch, src_len) and tgt
    (batch, tgt_len) token ids, padding lengths (None: no padding mask)."""

    batch: int
    src_len: int
    tgt_len: int
    src_vocab: int
    tgt_vocab: int
    d_model: int
    num_heads: int
    num_layers: int
    d_ff: int
    src_lengths: tuple[int, ...] | None
    tgt_lengths: tuple[int, ...] | None
    dtype: torch.dtype
    seed: int
    max_len: int = 16

    def __repr__(self) -> str:
        return (f"TransformerCase(batch={self.batch}, src_len={self.src_len}, tgt_len={self.tgt_len}, "
                f"src_vocab={self.src_vocab}, tgt_vocab={self.tgt_vocab}, d_model={self.d_model}, "
                f"num_heads={self.num_heads}, num_layers={self.num_layers}, d_ff={self.d_ff}, "
                f"src_lengths={self.src_lengths}, tgt_lengths={self.tgt_lengths}, "
                f"dtype={_dtype_name(self.dtype)}, seed={self.seed})")

    def kwargs(self, **overrides) -> dict:
        """Transformer(**kwargs), dropout off."""
        kw = dict(src_vocab_size=self.src_vocab, tgt_vocab_size=self.tgt_vocab, d_model=self.d_model,
                  num_heads=self.num_heads, num_layers=self.num_layers, d_ff=self.d_ff, dropout=0.0,
                  max_len=self.max_len)
        kw.update(overrides)
        return kw

    def src(self) -> torch.Tensor:
        return torch.randint(0, self.src_vocab, (self.batch, self.src_len), generator=generator(self.seed + 21))

    def tgt(self) -> torch.Tensor:
        return torch.randint(0, self.tgt_vocab, (self.batch, self.tgt_len), generator=generator(self.seed + 22))

    def src_padding(self) -> torch.Tensor | None:
        return None if self.src_lengths is None else lengths_mask(list(self.src_lengths), self.src_len)

    def tgt_padding(self) -> torch.Tensor | None:
        return None if self.tgt_lengths is None else lengths_mask(list(self.tgt_lengths), self.tgt_len)


@st.composite
def transformer_cases(draw, *, min_len: int = 1, max_len: int = 6, padding: bool | None = None,
                      dtype=None) -> TransformerCase:
    """Tiny Transformers: d_model 8 or 12, 1-2 heads, 1-2 layers, vocabularies 5-13."""
    batch = draw(st.integers(1, 3))
    src_len = draw(st.integers(min_len, max_len))
    tgt_len = draw(st.integers(min_len, max_len))

    def lengths(total):
        use = draw(st.sampled_from((True, True, False))) if padding is None else padding
        if not use:
            return None
        return tuple(draw(st.lists(st.integers(1, total), min_size=batch, max_size=batch)))

    num_heads = draw(st.sampled_from((1, 2)))
    return TransformerCase(
        batch=batch, src_len=src_len, tgt_len=tgt_len, src_vocab=draw(st.integers(5, 13)),
        tgt_vocab=draw(st.integers(5, 13)), d_model=draw(st.sampled_from((8, 12))),
        num_heads=num_heads, num_layers=draw(st.integers(1, 2)), d_ff=draw(st.sampled_from((8, 16))),
        src_lengths=lengths(src_len), tgt_lengths=lengths(tgt_len),
        dtype=draw(dtypes()) if dtype is None else dtype, seed=draw(seeds()))


# ------------------------------------------------------------------ exercise 8: training
@dataclass(frozen=True)
class NoamCase:
    """noam_lr(step, d_model, warmup, factor) at a few steps; factor None: left at its default."""

    d_model: int
    warmup: int
    factor: float | None
    steps: tuple[int, ...]

    def __repr__(self) -> str:
        return (f"NoamCase(d_model={self.d_model}, warmup={self.warmup}, factor={self.factor}, "
                f"steps={self.steps})")


@st.composite
def noam_cases(draw) -> NoamCase:
    warmup = draw(st.integers(1, 4000))
    steps = draw(st.lists(st.one_of(st.integers(1, 3 * warmup + 10), st.integers(1, 50)),
                          min_size=1, max_size=5))
    return NoamCase(d_model=draw(st.sampled_from((8, 16, 64, 100, 512, 1024))), warmup=warmup,
                    factor=draw(st.sampled_from((None, 1.0, 2.0, 0.5, 0.1, 7.0))),
                    steps=tuple(steps))


@dataclass(frozen=True)
class LossCase:
    """logits (*lead, vocab), target (*lead); `ignored` of the tokens carry
    ignore_index (never all of them).  ignore_index None: left at its default
    (-100); eps None: left at its default (0.1)."""

    lead: tuple[int, ...]
    vocab: int
    eps: float | None
    ignore_index: int | None
    ignore_rate: float
    scale: float
    dtype: torch.dtype
    seed: int

    def __repr__(self) -> str:
        return (f"LossCase(lead={self.lead}, vocab={self.vocab}, eps={self.eps}, "
                f"ignore_index={self.ignore_index}, ignore_rate={self.ignore_rate}, "
                f"scale={self.scale}, dtype={_dtype_name(self.dtype)}, seed={self.seed})")

    @property
    def effective_eps(self) -> float:
        return 0.1 if self.eps is None else self.eps

    @property
    def effective_ignore(self) -> int:
        return -100 if self.ignore_index is None else self.ignore_index

    def kwargs(self) -> dict:
        out = {}
        if self.eps is not None:
            out["eps"] = self.eps
        if self.ignore_index is not None:
            out["ignore_index"] = self.ignore_index
        return out

    def tensors(self):
        g = generator(self.seed)
        logits = (torch.randn((*self.lead, self.vocab), generator=g, dtype=torch.float64)
                  * self.scale).to(self.dtype)
        ignore = self.effective_ignore
        # real targets avoid ignore_index when it is a class id
        choices = torch.tensor([c for c in range(self.vocab) if c != ignore] or [0])
        target = choices[torch.randint(0, len(choices), self.lead, generator=g)]
        dropped = torch.rand(self.lead, generator=g) < self.ignore_rate
        dropped.view(-1)[int(torch.randint(0, dropped.numel(), (1,), generator=g))] = False
        return logits, target.masked_fill(dropped, ignore)


@st.composite
def loss_cases(draw, *, dtype=None) -> LossCase:
    lead = draw(st.one_of(st.tuples(st.integers(1, 12)),
                          st.tuples(st.integers(1, 4), st.integers(1, 6))))
    vocab = draw(st.integers(2, 11))
    eps = draw(st.one_of(st.none(), st.sampled_from((0.0, 0.1, 0.5)),
                         st.floats(0.0, 0.5, allow_nan=False)))
    ignore_index = draw(st.sampled_from((None, -100, 0, vocab - 1, min(3, vocab - 1))))
    return LossCase(lead=lead, vocab=vocab, eps=eps, ignore_index=ignore_index,
                    ignore_rate=draw(st.sampled_from((0.0, 0.3, 0.7))),
                    scale=draw(st.sampled_from((1.0, 3.0, 0.1))),
                    dtype=draw(dtypes()) if dtype is None else dtype, seed=draw(seeds()))


# ------------------------------------------------------------------ the cases every run tries first
# Random draws find a bug only when they happen to hit the shapes where it
# shows (several heads, Lq != Lk, d_k != d_v, d_k not 1 or 4, batch > 1, odd
# sizes, real padding...), so whether a bug was found depended on the seed.
# These cases run first on every seed (hypothesis's explicit examples), then
# the random ones.  Each kind's cases respect the constraints of every
# property that uses it.
F32, F64 = torch.float32, torch.float64
FIRST_CASES = {
    "attention": [
        AttentionCase(batch=(2,), lq=3, lk=5, d_k=3, d_v=2, dtype=F32, seed=11),
        AttentionCase(batch=(2, 3), lq=4, lk=2, d_k=6, d_v=5, dtype=F64, seed=12),
    ],
    "self_attention": [
        SelfAttentionCase(batch=(2,), length=4, d_model=6, dtype=F32, seed=13),
        SelfAttentionCase(batch=(), length=3, d_model=5, dtype=F64, seed=14),
    ],
    "masked_attention": [
        (AttentionCase(batch=(2,), lq=3, lk=5, d_k=3, d_v=2, dtype=F32, seed=15), MaskSpec("random", "full", 15)),
        (AttentionCase(batch=(2,), lq=4, lk=4, d_k=6, d_v=3, dtype=F64, seed=16), MaskSpec("causal", "shared", 16)),
        (AttentionCase(batch=(3,), lq=2, lk=5, d_k=5, d_v=2, dtype=F32, seed=17), MaskSpec("padding", "keys", 17)),
    ],
    "masked_self_attention": [
        (SelfAttentionCase(batch=(2,), length=4, d_model=6, dtype=F32, seed=18), MaskSpec("causal", "shared", 18)),
        (SelfAttentionCase(batch=(3,), length=5, d_model=5, dtype=F64, seed=19), MaskSpec("padding", "keys", 19)),
    ],
    "cross_attention": [
        CrossAttentionCase(batch=2, lq=3, lk=5, d_model=6, dtype=F32, seed=20),
        CrossAttentionCase(batch=3, lq=4, lk=2, d_model=5, dtype=F64, seed=21),
    ],
    "square_cross_attention": [
        CrossAttentionCase(batch=2, lq=4, lk=4, d_model=6, dtype=F32, seed=22),
    ],
    "multi_head": [   # several heads, d_k not 1 or 4, Lq != Lk, batch == heads (a (B, 1, Lk) padding shows)
        MultiHeadCase(batch=2, lq=3, lk=5, num_heads=2, d_k=3, bias=True, kind="cross", masks="none",
                      mask_style="random", dtype=F32, seed=23),
        MultiHeadCase(batch=2, lq=4, lk=3, num_heads=4, d_k=2, bias=False, kind="memory", masks="none",
                      mask_style="random", dtype=F64, seed=24),
    ],
    "masked_multi_head": [
        MultiHeadCase(batch=2, lq=3, lk=5, num_heads=2, d_k=3, bias=True, kind="cross", masks="both",
                      mask_style="random", dtype=F32, seed=25),
        MultiHeadCase(batch=2, lq=4, lk=4, num_heads=2, d_k=3, bias=False, kind="self", masks="padding",
                      mask_style="random", dtype=F64, seed=26),
    ],
    "positional": [
        PositionalCase(batch=2, length=7, d_model=10, max_len=12, dtype=F32, seed=27),
    ],
    "layer": [
        LayerCase(batch=2, tgt_len=4, src_len=3, d_model=8, num_heads=2, d_ff=16, tgt_lengths=(4, 2),
                  src_lengths=(3, 1), causal=True, dtype=F32, seed=28),
        LayerCase(batch=3, tgt_len=3, src_len=5, d_model=12, num_heads=2, d_ff=8, tgt_lengths=(3, 1, 2),
                  src_lengths=(5, 2, 4), causal=True, dtype=F64, seed=29),
    ],
    "layer_float64": [
        LayerCase(batch=2, tgt_len=4, src_len=3, d_model=8, num_heads=2, d_ff=16, tgt_lengths=(4, 2),
                  src_lengths=(3, 1), causal=True, dtype=F64, seed=32),
    ],
    "transformer": [
        TransformerCase(batch=2, src_len=5, tgt_len=4, src_vocab=11, tgt_vocab=9, d_model=8, num_heads=2,
                        num_layers=2, d_ff=16, src_lengths=(5, 3), tgt_lengths=(4, 2), dtype=F32, seed=30),
        TransformerCase(batch=3, src_len=3, tgt_len=5, src_vocab=7, tgt_vocab=12, d_model=12, num_heads=2,
                        num_layers=1, d_ff=8, src_lengths=(3, 1, 2), tgt_lengths=(5, 2, 3), dtype=F64, seed=31),
    ],
}


def first(which: str, arg: str = "case", **others):
    """`@first("attention")`: the property tries FIRST_CASES[which] (as its
    argument `arg`, with `others` for its other arguments) before random cases."""
    def apply(test):
        for case in reversed(FIRST_CASES[which]):
            test = example(**{arg: case}, **others)(test)
        return test
    return apply
