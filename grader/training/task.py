"""The synthetic translation task of the timed training check.

Reverse a random sequence of symbols:

    src     = a b c d EOS PAD PAD          (length 4 of at most 6, here)
    tgt_in  = BOS d c b a EOS PAD
    tgt_out = d c b a EOS PAD PAD          (tgt_in shifted left: what to predict)

Ids 0, 1, 2 are PAD, BOS, EOS; the symbols are 3 ... vocab - 1.  Lengths vary,
so padding, the padding masks and the loss's ignore_index all matter.  No
download, no hub: everything is drawn from a seed.

The timed check draws a fresh token mapping for each run (`drawn`): the
target writes each symbol through a random permutation of the symbols
(reverse, then translate), so weights prepared in advance do not help.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch

PAD, BOS, EOS = 0, 1, 2


@dataclass(frozen=True)
class ReversalTask:
    vocab: int = 16        # PAD, BOS, EOS and vocab - 3 symbols
    min_len: int = 4
    max_len: int = 10      # symbols per sequence, EOS not counted
    # The target writes symbol s as mapping[s - 3] (a permutation of the
    # symbols); () writes it as itself.
    mapping: tuple[int, ...] = ()

    @property
    def src_len(self) -> int:
        return self.max_len + 1

    @property
    def tgt_len(self) -> int:
        return self.max_len + 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mapping"] = list(self.mapping)
        return d

    def drawn(self, seed: int) -> "ReversalTask":
        """This task with a token mapping drawn from `seed` (one per run)."""
        generator = torch.Generator().manual_seed(int(seed) % (2**63))
        symbols = torch.randperm(self.vocab - 3, generator=generator) + 3
        return replace(self, mapping=tuple(int(s) for s in symbols))

    def _table(self) -> torch.Tensor:
        """Token id -> the id the target writes (PAD, BOS, EOS unchanged)."""
        table = torch.arange(self.vocab)
        if self.mapping:
            table[3:] = torch.tensor(self.mapping, dtype=torch.long)
        return table

    def batch(self, n: int, generator: torch.Generator):
        """(src (n, max_len + 1), tgt_in (n, max_len + 1), tgt_out (n, max_len + 1)), long, CPU."""
        lengths = torch.randint(self.min_len, self.max_len + 1, (n,), generator=generator)
        symbols = torch.randint(3, self.vocab, (n, self.max_len), generator=generator)
        pos = torch.arange(self.max_len)
        real = pos[None, :] < lengths[:, None]                                   # (n, max_len)
        rows = torch.arange(n)

        src = torch.full((n, self.src_len), PAD, dtype=torch.long)
        src[:, :self.max_len] = torch.where(real, symbols, PAD)
        src[rows, lengths] = EOS

        reverse_index = (lengths[:, None] - 1 - pos[None, :]).clamp(min=0)
        reversed_ = torch.where(real, self._table()[torch.gather(symbols, 1, reverse_index)], PAD)
        tgt = torch.full((n, self.tgt_len + 1), PAD, dtype=torch.long)
        tgt[:, 0] = BOS
        tgt[:, 1:self.max_len + 1] = reversed_
        tgt[rows, lengths + 1] = EOS
        return src, tgt[:, :-1].contiguous(), tgt[:, 1:].contiguous()

    def batches(self, n: int, seed: int):
        """An endless stream of batches of `n` examples."""
        generator = torch.Generator().manual_seed(int(seed))
        while True:
            yield self.batch(n, generator)


def token_accuracy(predictions: torch.Tensor, tgt_out: torch.Tensor) -> float:
    """The share of target tokens (EOS included, padding not) predicted right
    at their position.  `predictions` (n, <= T) may be shorter or longer than
    tgt_out (n, T): missing positions count as wrong, extra ones are ignored."""
    n, T = tgt_out.shape
    padded = torch.full((n, T), -1, dtype=torch.long)
    if predictions.dim() == 2 and predictions.shape[0] == n:
        width = min(T, predictions.shape[1])
        padded[:, :width] = predictions[:, :width].to(torch.long)
    real = tgt_out != PAD
    return float(((padded == tgt_out) & real).sum()) / max(1, int(real.sum()))


def exact_match(predictions: torch.Tensor, tgt_out: torch.Tensor) -> float:
    """The share of sequences predicted entirely right (up to their EOS)."""
    n, T = tgt_out.shape
    padded = torch.full((n, T), -1, dtype=torch.long)
    if predictions.dim() == 2 and predictions.shape[0] == n:
        width = min(T, predictions.shape[1])
        padded[:, :width] = predictions[:, :width].to(torch.long)
    real = tgt_out != PAD
    return float((((padded == tgt_out) | ~real).all(dim=1)).float().mean())
