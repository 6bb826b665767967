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
        # BEGIN SOLUTION
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)
        # END SOLUTION

    def forward(self, x):
        """Args: x (B, L, d_model). Returns: (B, L, d_model)."""
        # BEGIN SOLUTION
        hidden = torch.relu(self.linear1(x))  # (B, L, d_ff)
        return self.linear2(self.dropout(hidden))  # (B, L, d_model)
        # END SOLUTION


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
        # BEGIN SOLUTION
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        # END SOLUTION

    def forward(self, x, src_key_padding_mask=None):
        """One encoder layer.

        Args:
            x: (B, S, d_model).
            src_key_padding_mask: optional BoolTensor (B, S), True at padding.

        Returns:
            (B, S, d_model).
        """
        # BEGIN SOLUTION
        # 1. Self-attention sub-layer: every source token looks at every
        #    (non-padding) source token.
        attn, _ = self.self_attn(x, x, x, key_padding_mask=src_key_padding_mask)  # (B, S, d_model)
        x = self.norm1(x + self.dropout1(attn))  # (B, S, d_model)

        # 2. Feed-forward sub-layer.
        x = self.norm2(x + self.dropout2(self.feed_forward(x)))  # (B, S, d_model)
        return x
        # END SOLUTION


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
        # BEGIN SOLUTION
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.cross_attn = MultiHeadAttention(d_model, num_heads)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        # END SOLUTION

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
        # BEGIN SOLUTION
        # 1. Masked self-attention: each target token sees itself and the past.
        attn, _ = self.self_attn(
            x, x, x, attn_mask=tgt_mask, key_padding_mask=tgt_key_padding_mask
        )  # (B, T, d_model)
        x = self.norm1(x + self.dropout1(attn))  # (B, T, d_model)

        # 2. Encoder-decoder attention: queries from x, keys and values from memory.
        attn, _ = self.cross_attn(
            x, memory, memory, key_padding_mask=memory_key_padding_mask
        )  # (B, T, d_model)
        x = self.norm2(x + self.dropout2(attn))  # (B, T, d_model)

        # 3. Feed-forward sub-layer.
        x = self.norm3(x + self.dropout3(self.feed_forward(x)))  # (B, T, d_model)
        return x
        # END SOLUTION
