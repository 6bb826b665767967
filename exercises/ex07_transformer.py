"""Exercise 7 · The full Transformer, and greedy decoding.

Figure 1 of the paper, from token ids to next-token logits:

    src (B, S) --embed * sqrt(d_model)--> + PE --> N x EncoderLayer --> memory (B, S, D)
    tgt (B, T) --embed * sqrt(d_model)--> + PE --> N x DecoderLayer(memory) --> (B, T, D)
                                                        --> generator --> logits (B, T, V_tgt)

- Word embedding turns token ids into vectors; they are multiplied by
  sqrt(d_model) (section 3.4) so that they are not drowned by the positional
  encoding, whose entries lie in [-1, 1].
- The encoder layers see the whole source (only padding is masked).
- The decoder's self-attention uses a causal mask, built inside ``decode`` on
  the device of the target, so that position t only sees positions <= t:
  training predicts every position in parallel without cheating.
- The source padding mask is used twice: in the encoder's self-attention and
  as the memory padding mask of the decoder's cross-attention.
- The generator is a linear layer from d_model to the target vocabulary; it
  returns logits (apply softmax / log_softmax outside). With ``tie_weights``
  it shares ONE parameter with the target embedding (section 3.4), which is
  possible because both are (V_tgt, d_model) matrices.
- As in the paper, the stacks are N post-norm layers each, with no extra
  LayerNorm at the end.

Greedy decoding (inference): encode the source once, start every row with
BOS, then repeatedly run the decoder on everything generated so far and append
the argmax of the LAST position's logits. A row that has produced EOS is
finished: it keeps receiving EOS. Stop when every row is finished or when the
output holds max_len tokens (BOS included).

Usual mistakes:
- forgetting the sqrt(d_model) scale, or applying it after the positional
  encoding;
- building the causal mask on the CPU while the model is on the GPU;
- passing the source padding mask as the decoder's SELF-attention mask;
- ``self.generator.weight = nn.Parameter(self.tgt_embed.weight)`` or a
  ``.clone()``: that makes a copy, not a shared parameter;
- calling ``model.eval()`` inside ``greedy_decode``: the caller decides the
  mode; use ``torch.no_grad()`` to avoid building a graph.
"""

import math

import torch
import torch.nn as nn

from ex02_masks import causal_mask
from ex05_positional_encoding import PositionalEncoding
from ex06_blocks import DecoderLayer, EncoderLayer


class Transformer(nn.Module):
    """Encoder-decoder Transformer ("Attention Is All You Need", figure 1).

    Attributes:
        d_model: the model width.
        src_embed: nn.Embedding(src_vocab_size, d_model).
        tgt_embed: nn.Embedding(tgt_vocab_size, d_model).
        positional: PositionalEncoding(d_model, max_len, dropout), shared by
            both sides.
        encoder_layers: nn.ModuleList of num_layers EncoderLayer.
        decoder_layers: nn.ModuleList of num_layers DecoderLayer.
        generator: nn.Linear(d_model, tgt_vocab_size); with tie_weights=True
            its weight IS tgt_embed.weight.
    """

    def __init__(
        self,
        src_vocab_size,
        tgt_vocab_size,
        d_model=512,
        num_heads=8,
        num_layers=6,
        d_ff=2048,
        dropout=0.1,
        max_len=5000,
        tie_weights=False,
    ):
        super().__init__()
        # TODO: Implement for Exercise 7.
        raise NotImplementedError("Exercise 7: Transformer.__init__")

    def encode(self, src, src_key_padding_mask=None):
        """Source token ids to memory.

        Args:
            src: LongTensor (B, S).
            src_key_padding_mask: optional BoolTensor (B, S), True at padding.

        Returns:
            memory, (B, S, d_model).
        """
        # TODO: Implement for Exercise 7.
        raise NotImplementedError("Exercise 7: Transformer.encode")

    def decode(self, tgt, memory, tgt_key_padding_mask=None, memory_key_padding_mask=None):
        """Target token ids (shifted right) and memory to decoder states.

        Args:
            tgt: LongTensor (B, T).
            memory: (B, S, d_model), the output of ``encode``.
            tgt_key_padding_mask: optional BoolTensor (B, T), True at padding.
            memory_key_padding_mask: optional BoolTensor (B, S), True at padding.

        Returns:
            (B, T, d_model).
        """
        # TODO: Implement for Exercise 7.
        raise NotImplementedError("Exercise 7: Transformer.decode")

    def forward(self, src, tgt, src_key_padding_mask=None, tgt_key_padding_mask=None):
        """Logits for every target position.

        Args:
            src: LongTensor (B, S).
            tgt: LongTensor (B, T), the decoder input (BOS, y_1, ..., y_{T-1}).
            src_key_padding_mask: optional BoolTensor (B, S), True at padding;
                also used as the memory padding mask.
            tgt_key_padding_mask: optional BoolTensor (B, T), True at padding.

        Returns:
            logits, (B, T, tgt_vocab_size).
        """
        # TODO: Implement for Exercise 7.
        raise NotImplementedError("Exercise 7: Transformer.forward")


def greedy_decode(model, src, max_len, bos_id, eos_id, src_key_padding_mask=None):
    """Generate with the argmax token at every step.

    Does not change the model's train()/eval() mode; runs without gradients.

    Args:
        model: a Transformer.
        src: LongTensor (B, S).
        max_len: the most tokens to return per row, BOS included.
        bos_id: token that starts every output row.
        eos_id: token that ends a row; finished rows are filled with it.
        src_key_padding_mask: optional BoolTensor (B, S), True at padding.

    Returns:
        LongTensor (B, n) with n <= max_len; column 0 is bos_id.
    """
    # TODO: Implement for Exercise 7.
    raise NotImplementedError("Exercise 7: greedy_decode")
