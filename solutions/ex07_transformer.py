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
        # BEGIN SOLUTION
        self.d_model = d_model

        # 1. Embeddings and the positional encoding.
        self.src_embed = nn.Embedding(src_vocab_size, d_model)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model)
        self.positional = PositionalEncoding(d_model, max_len, dropout)

        # 2. The two stacks of N identical layers.
        self.encoder_layers = nn.ModuleList(
            [EncoderLayer(d_model, num_heads, d_ff, dropout) for _ in range(num_layers)]
        )
        self.decoder_layers = nn.ModuleList(
            [DecoderLayer(d_model, num_heads, d_ff, dropout) for _ in range(num_layers)]
        )

        # 3. From d_model features to one logit per target token.
        self.generator = nn.Linear(d_model, tgt_vocab_size)

        # 4. Glorot / Xavier initialisation of the matrices, as in the
        #    Annotated Transformer (biases and LayerNorms keep their defaults).
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

        # 5. Optional weight tying: one shared parameter, not a copy.
        if tie_weights:
            self.generator.weight = self.tgt_embed.weight
        # END SOLUTION

    def encode(self, src, src_key_padding_mask=None):
        """Source token ids to memory.

        Args:
            src: LongTensor (B, S).
            src_key_padding_mask: optional BoolTensor (B, S), True at padding.

        Returns:
            memory, (B, S, d_model).
        """
        # BEGIN SOLUTION
        x = self.src_embed(src) * math.sqrt(self.d_model)  # (B, S, d_model)
        x = self.positional(x)  # (B, S, d_model)
        for layer in self.encoder_layers:
            x = layer(x, src_key_padding_mask=src_key_padding_mask)  # (B, S, d_model)
        return x
        # END SOLUTION

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
        # BEGIN SOLUTION
        T = tgt.size(1)
        tgt_mask = causal_mask(T, device=tgt.device)  # (T, T), True = future

        x = self.tgt_embed(tgt) * math.sqrt(self.d_model)  # (B, T, d_model)
        x = self.positional(x)  # (B, T, d_model)
        for layer in self.decoder_layers:
            x = layer(
                x,
                memory,
                tgt_mask=tgt_mask,
                tgt_key_padding_mask=tgt_key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask,
            )  # (B, T, d_model)
        return x
        # END SOLUTION

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
        # BEGIN SOLUTION
        memory = self.encode(src, src_key_padding_mask)  # (B, S, d_model)
        out = self.decode(
            tgt,
            memory,
            tgt_key_padding_mask=tgt_key_padding_mask,
            memory_key_padding_mask=src_key_padding_mask,
        )  # (B, T, d_model)
        return self.generator(out)  # (B, T, tgt_vocab_size)
        # END SOLUTION


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
    # BEGIN SOLUTION
    with torch.no_grad():
        # 1. Encode the source once.
        memory = model.encode(src, src_key_padding_mask)  # (B, S, d_model)

        # 2. Every row starts with BOS; no row is finished yet.
        B = src.size(0)
        ys = torch.full((B, 1), bos_id, dtype=torch.long, device=src.device)  # (B, 1)
        finished = torch.zeros(B, dtype=torch.bool, device=src.device)  # (B,)

        # 3. Append one token per step until every row is finished.
        for _ in range(max_len - 1):
            out = model.decode(
                ys, memory, memory_key_padding_mask=src_key_padding_mask
            )  # (B, t, d_model)
            logits = model.generator(out[:, -1])  # (B, V), last position only
            next_token = logits.argmax(dim=-1)  # (B,)
            next_token = next_token.masked_fill(finished, eos_id)  # finished rows: EOS
            ys = torch.cat([ys, next_token.unsqueeze(1)], dim=1)  # (B, t + 1)

            finished = finished | (next_token == eos_id)
            if finished.all():
                break
    return ys
    # END SOLUTION
