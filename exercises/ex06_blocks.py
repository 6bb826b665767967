"""Exercise 6 · The encoder and decoder layers.

Section 3.1 of the paper builds each stack from identical layers. Every
sub-layer is wrapped in a residual connection followed by layer normalization
("post-norm", as in the paper):

    x = LayerNorm(x + Dropout(Sublayer(x)))

The position-wise feed-forward network (section 3.3) is applied to each token
separately, with an inner width d_ff (2048 in the paper, for d_model = 512):

    FFN(x) = max(0, x W_1 + b_1) W_2 + b_2

Encoder layer (two sub-layers):

    x = norm1(x + dropout(self_attn(x, x, x, key_padding_mask=src_pad)))
    x = norm2(x + dropout(feed_forward(x)))

Decoder layer (three sub-layers):

    x = norm1(x + dropout(self_attn(x, x, x, attn_mask=causal, key_padding_mask=tgt_pad)))
    x = norm2(x + dropout(cross_attn(x, memory, memory, key_padding_mask=src_pad)))
    x = norm3(x + dropout(feed_forward(x)))

Shapes: x (B, L, d_model) in, (B, L, d_model) out; memory (B, S, d_model) is
the encoder's output. With the same weights and dropout 0 these layers equal
``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer(d_model,
num_heads, d_ff, dropout=0.0, batch_first=True, norm_first=False)``.

Usual mistakes:
- normalizing before the sub-layer (pre-norm, ``x + sublayer(norm(x))``):
  a fine design, but not the paper's, and not what is asked here;
- forgetting the residual ``x +``;
- in the decoder, taking the keys/values of cross-attention from x instead
  of memory, or masking the memory with the causal mask (the decoder may see
  the WHOLE source sentence);
- reusing one LayerNorm for two sub-layers: each sub-layer has its own.
"""

import torch
import torch.nn as nn

from ex04_multi_head import MultiHeadAttention


class FeedForward(nn.Module):
    """FFN(x) = linear2(dropout(relu(linear1(x)))).

    Attributes:
        linear1: nn.Linear(d_model, d_ff).
        linear2: nn.Linear(d_ff, d_model).
        dropout: nn.Dropout(dropout).
    """

    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        # TODO: Implement for Exercise 6.
        raise NotImplementedError("Exercise 6: FeedForward.__init__")

    def forward(self, x):
        """Args: x (B, L, d_model). Returns: (B, L, d_model)."""
        # TODO: Implement for Exercise 6.
        raise NotImplementedError("Exercise 6: FeedForward.forward")


class EncoderLayer(nn.Module):
    """Self-attention, then feed-forward, each as norm(x + dropout(sublayer)).

    Attributes:
        self_attn: MultiHeadAttention(d_model, num_heads).
        feed_forward: FeedForward(d_model, d_ff, dropout).
        norm1, norm2: nn.LayerNorm(d_model).
        dropout1, dropout2: nn.Dropout(dropout) on each sub-layer's output.
    """

    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        # TODO: Implement for Exercise 6.
        raise NotImplementedError("Exercise 6: EncoderLayer.__init__")

    def forward(self, x, src_key_padding_mask=None):
        """One encoder layer.

        Args:
            x: (B, S, d_model).
            src_key_padding_mask: optional BoolTensor (B, S), True at padding.

        Returns:
            (B, S, d_model).
        """
        # TODO: Implement for Exercise 6.
        raise NotImplementedError("Exercise 6: EncoderLayer.forward")


class DecoderLayer(nn.Module):
    """Masked self-attention, cross-attention over memory, then feed-forward.

    Attributes:
        self_attn, cross_attn: MultiHeadAttention(d_model, num_heads).
        feed_forward: FeedForward(d_model, d_ff, dropout).
        norm1, norm2, norm3: nn.LayerNorm(d_model).
        dropout1, dropout2, dropout3: nn.Dropout(dropout).
    """

    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        # TODO: Implement for Exercise 6.
        raise NotImplementedError("Exercise 6: DecoderLayer.__init__")

    def forward(
        self,
        x,
        memory,
        tgt_mask=None,
        tgt_key_padding_mask=None,
        memory_key_padding_mask=None,
    ):
        """One decoder layer.

        Args:
            x: decoder states, (B, T, d_model).
            memory: encoder output, (B, S, d_model).
            tgt_mask: optional BoolTensor (T, T), usually the causal mask.
            tgt_key_padding_mask: optional BoolTensor (B, T), True at padding.
            memory_key_padding_mask: optional BoolTensor (B, S), True at padding.

        Returns:
            (B, T, d_model).
        """
        # TODO: Implement for Exercise 6.
        raise NotImplementedError("Exercise 6: DecoderLayer.forward")
