"""The one list of exercises.

Everything that needs to know which exercises exist -- the CLI, the runner,
the hidden tests, the scorecard, the stub and notebook generator -- reads it
from here.  Nothing else hard-codes an exercise number, a file name or a
point value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grader.errors import GraderError

POINTS_PER_EXERCISE = 10.0

# The built-ins that exercises 1-7 teach, and so must not call (the contract).
ATTENTION_BUILTINS: tuple[str, ...] = (
    "torch.nn.functional.scaled_dot_product_attention",
    "torch.nn.MultiheadAttention",
    "torch.nn.functional.multi_head_attention_forward",
    "torch.nn.Transformer",
    "torch.nn.TransformerEncoder",
    "torch.nn.TransformerEncoderLayer",
    "torch.nn.TransformerDecoder",
    "torch.nn.TransformerDecoderLayer",
)

CROSS_ENTROPY_BUILTINS: tuple[str, ...] = (
    "torch.nn.functional.cross_entropy",
    "torch.nn.CrossEntropyLoss",
)


@dataclass(frozen=True)
class Exercise:
    number: int
    slug: str
    title: str
    module: str
    # The names its file defines: the contract's API (functions and classes).
    api: tuple[str, ...] = ()
    depends_on: tuple[int, ...] = ()
    forbidden: tuple[str, ...] = ()
    # Student functions inside which `forbidden` applies; empty: everywhere.
    forbidden_scope: tuple[str, ...] = ()
    points: float = POINTS_PER_EXERCISE
    lesson: str = ""
    # Its hidden tests touch torch features whose first use imports torch's
    # compiler stack (~2 s): the "meta" device (the CPU-only check that new
    # tensors follow the input's device) or optimizer steps.  Workers then
    # start from a zygote that paid for it once.
    warm_start: bool = False
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def file(self) -> str:
        return f"{self.module}.py"

    @property
    def notebook(self) -> str:
        return f"{self.module}.ipynb"

    @property
    def test_module(self) -> str:
        return f"test_{self.module}.py"

    @property
    def label(self) -> str:
        return f"{self.number} · {self.slug}"


EXERCISES: tuple[Exercise, ...] = (
    Exercise(1, "attention", "Scaled dot-product attention", "ex01_attention",
             api=("scaled_dot_product_attention", "SelfAttention"),
             forbidden=ATTENTION_BUILTINS,
             lesson="Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V"),
    Exercise(2, "masks", "Causal and padding masks", "ex02_masks",
             api=("causal_mask", "padding_mask", "masked_attention", "MaskedSelfAttention"),
             depends_on=(1,), forbidden=ATTENTION_BUILTINS, warm_start=True,
             lesson="Masked positions get exactly zero attention weight"),
    Exercise(3, "cross-attention", "Cross-attention", "ex03_cross_attention",
             api=("Attention",),
             depends_on=(1, 2), forbidden=ATTENTION_BUILTINS,
             lesson="Queries from the decoder, keys and values from the encoder"),
    Exercise(4, "multi-head", "Multi-head attention", "ex04_multi_head",
             api=("MultiHeadAttention",),
             depends_on=(1, 2), forbidden=ATTENTION_BUILTINS, warm_start=True,
             lesson="MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O"),
    Exercise(5, "positional-encoding", "Sinusoidal positional encoding",
             "ex05_positional_encoding",
             api=("sinusoidal_encoding", "PositionalEncoding"),
             forbidden=ATTENTION_BUILTINS, warm_start=True,
             lesson="PE(pos, 2i) = sin(pos / 10000^(2i/d_model))"),
    Exercise(6, "blocks", "Encoder and decoder layers", "ex06_blocks",
             api=("FeedForward", "EncoderLayer", "DecoderLayer"),
             depends_on=(4,), forbidden=ATTENTION_BUILTINS, warm_start=True,
             lesson="LayerNorm(x + Sublayer(x))"),
    Exercise(7, "transformer", "The full Transformer", "ex07_transformer",
             api=("Transformer", "greedy_decode"),
             depends_on=(2, 4, 5, 6), forbidden=ATTENTION_BUILTINS, warm_start=True,
             lesson="Encoder-decoder stacks, embeddings × √d_model, greedy decoding"),
    Exercise(8, "training", "AMP training loop", "ex08_training",
             api=("noam_lr", "label_smoothed_cross_entropy", "make_optimizer", "train_step",
                  "save_checkpoint", "load_checkpoint", "train"),
             depends_on=(7,), forbidden=CROSS_ENTROPY_BUILTINS, warm_start=True,
             forbidden_scope=("label_smoothed_cross_entropy",),
             lesson="Noam schedule, label smoothing, mixed precision, checkpoints"),
)

# module -> the names its file defines (how a file holding another exercise's
# code is recognised; tests check it against solutions/).
CONTRACT_NAMES: dict[str, tuple[str, ...]] = {e.module: e.api for e in EXERCISES}

_BY_KEY: dict[str, Exercise] = {}
for _ex in EXERCISES:
    for _key in (str(_ex.number), f"{_ex.number:02d}", _ex.slug, _ex.module):
        _BY_KEY[_key] = _ex


class UnknownExercise(GraderError, KeyError):
    """No exercise by that number, slug or module name (a usage error)."""


def get(key: int | str) -> Exercise:
    """An exercise by number (3, "3", "03"), slug ("masks") or module name."""
    found = _BY_KEY.get(str(key).strip().lower())
    if found is None:
        choices = ", ".join(f"{e.number} ({e.slug})" for e in EXERCISES)
        raise UnknownExercise(f"no exercise {key!r}; choose one of {choices}")
    return found


def by_module(module: str) -> Exercise | None:
    return next((e for e in EXERCISES if e.module == module), None)


def max_total(exercises: tuple[Exercise, ...] | list[Exercise] = EXERCISES) -> float:
    return sum(e.points for e in exercises)
