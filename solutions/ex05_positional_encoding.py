"""Exercise 5 · Sinusoidal positional encoding.

Attention itself has no idea of word order: shuffle the tokens and each one
gets the same output, shuffled. Positional encoding keeps track of word order
by adding to each token embedding a vector that depends only on its position.
Section 3.5 of the paper uses sines and cosines of different frequencies:

    PE[pos, 2i]   = sin(pos / 10000^(2i / d_model))
    PE[pos, 2i+1] = cos(pos / 10000^(2i / d_model))

- even features (0, 2, 4, ...) get the sine, odd features (1, 3, 5, ...) the
  cosine, and the pair (2i, 2i+1) shares the same frequency;
- the wavelengths grow geometrically from 2*pi to 10000 * 2*pi, so low
  features change fast with the position and high features slowly;
- PE[pos + k] is a linear function of PE[pos], which makes relative
  positions easy to attend to;
- nothing is learned: the table is computed once and stored as a BUFFER, so
  it moves with ``.to(device)`` and appears in the state dict, but the
  optimizer never sees it.

Shapes:

    sinusoidal_encoding(max_len, d_model)  -> (max_len, d_model), float32
    PositionalEncoding(x)                  x (B, L, d_model) -> (B, L, d_model)
                                           = dropout(x + PE[:L])

Usual mistakes:
- the exponent 2i/d_model written as i/d_model, or with i running over all
  features instead of over the pairs;
- sin and cos swapped, or concatenated ([sin..., cos...]) instead of interleaved;
- computing the table in float32 with exp/log tricks: at positions in the
  thousands the angle loses several digits; compute it in float64 and
  convert to float32 at the end;
- storing the table as an ``nn.Parameter`` (it would be trained) or as a plain
  attribute (it would not follow ``.to(device)``).
"""

import torch
import torch.nn as nn


def sinusoidal_encoding(max_len, d_model):
    """The paper's table of sines and cosines.

    Args:
        max_len: number of positions.
        d_model: number of features; must be even.

    Returns:
        Tensor (max_len, d_model), float32.

    Raises:
        ValueError: if d_model is odd.
    """
    # BEGIN SOLUTION
    if d_model % 2 != 0:
        raise ValueError(f"d_model must be even, got {d_model}")

    # 1. Positions and pair indices 2i, in float64 for accuracy.
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)  # (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d_model / 2,)

    # 2. The angle pos / 10000^(2i / d_model) for every (pos, i).
    angle = position / torch.pow(10000.0, two_i / d_model)  # (max_len, d_model / 2)

    # 3. Sines on the even features, cosines on the odd ones.
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)  # (max_len, d_model)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.float()  # (max_len, d_model), float32
    # END SOLUTION


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal table to the embeddings, then applies dropout.

    Args:
        d_model: embedding width (even).
        max_len: longest sequence supported.
        dropout: dropout probability applied to the sum (the paper uses 0.1).

    Attributes:
        pe: buffer (max_len, d_model) holding ``sinusoidal_encoding``.
        dropout: nn.Dropout(dropout).
    """

    def __init__(self, d_model, max_len=5000, dropout=0.0):
        super().__init__()
        # BEGIN SOLUTION
        self.dropout = nn.Dropout(dropout)
        # A buffer: saved with the model and moved by .to(), but never trained.
        self.register_buffer("pe", sinusoidal_encoding(max_len, d_model))  # (max_len, d_model)
        # END SOLUTION

    def forward(self, x):
        """dropout(x + pe[:L]).

        Args:
            x: embeddings, (B, L, d_model).

        Returns:
            (B, L, d_model), in x's dtype and on x's device.

        Raises:
            ValueError: if L is larger than max_len.
        """
        # BEGIN SOLUTION
        L = x.size(1)
        if L > self.pe.size(0):
            raise ValueError(
                f"sequence length {L} exceeds max_len {self.pe.size(0)}"
            )
        pe = self.pe[:L].to(device=x.device, dtype=x.dtype)  # (L, d_model)
        return self.dropout(x + pe)  # (B, L, d_model), pe broadcasts over B
        # END SOLUTION
