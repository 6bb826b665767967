"""Hypothesis strategies for the hidden tests (one module, plural names).

Strategies draw small *specifications* (shapes, dtype, a seed), not tensors:
the tensors are made from the seed by the test.  So a shrunk failing example
reads like `AttentionCase(batch=(2,), lq=2, lk=3, d_k=2, d_v=1, dtype=float32, seed=0)`
and reproduces exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st

FLOAT_DTYPES = (torch.float32, torch.float64)


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
