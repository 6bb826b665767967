"""Exercise 3 · Encoder-decoder attention (cross-attention).

The first Transformer was a Seq2Seq, or Encoder-Decoder, model: the encoder
reads the source sentence, the decoder writes the translation. Encoder-decoder
attention is how the decoder looks at the source: the QUERIES come from the
decoder, while the KEYS and VALUES come from the encoder's output (the
"memory"):

    CrossAttention = softmax((x_q W_q^T) (x_k W_k^T)^T / sqrt(d_k) + M) (x_v W_v^T)

with x_q = decoder states (B, Lq, D) and x_k = x_v = memory (B, Lk, D). The
same idea connects text to images in multi-modal models.

Nothing in the equation requires the three inputs to be the same tensor or the
same length, so one general ``Attention`` module covers all cases:

    self-attention            Attention(d)(x, x, x)
    masked self-attention     Attention(d)(x, x, x, mask=causal_mask(L))
    encoder-decoder attention Attention(d)(decoder_states, memory, memory)

Shapes:

    x_q     (B, Lq, D)       queries come from here
    x_k     (B, Lk, D)       keys come from here
    x_v     (B, Lk, D)       values come from here
    mask    broadcastable to (B, Lq, Lk), True = not allowed
    output  (B, Lq, D)       one new vector per QUERY

Usual mistakes:
- computing the keys or values from x_q (only queries come from x_q);
- assuming Lq == Lk: the weights are (Lq, Lk), and the output has Lq rows;
- feeding the keys where the values belong (x_k and x_v are often the same
  tensor, so the bug hides until they are not).
"""

import torch.nn as nn

from ex02_masks import masked_attention


class Attention(nn.Module):
    """Attention whose queries, keys and values may come from different inputs.

    Attributes:
        W_q, W_k, W_v: nn.Linear(d_model, d_model, bias=False).
    """

    def __init__(self, d_model):
        super().__init__()
        # TODO: Implement for Exercise 3.
        raise NotImplementedError("Exercise 3: Attention.__init__")

    def forward(self, x_q, x_k, x_v, mask=None):
        """MaskedAttention(W_q(x_q), W_k(x_k), W_v(x_v), mask).

        Args:
            x_q: (B, Lq, D), source of the queries (e.g. decoder states).
            x_k: (B, Lk, D), source of the keys (e.g. encoder memory).
            x_v: (B, Lk, D), source of the values (e.g. encoder memory).
            mask: optional BoolTensor broadcastable to (B, Lq, Lk),
                True = not allowed.

        Returns:
            (B, Lq, D).
        """
        # TODO: Implement for Exercise 3.
        raise NotImplementedError("Exercise 3: Attention.forward")
