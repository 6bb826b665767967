"""Reference computations, done by the judge in float64 from the paper's
equations and PyTorch's own modules.  Never imports student code."""

from __future__ import annotations

import math

import torch


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
              *, scale: float | None = None, softmax_dim: int = -1, mask_fill: float = float("-inf"),
              mask_after_softmax: bool = False, apply_softmax: bool = True):
    """softmax(q kᵀ / sqrt(d_k)) v in float64, with a bool mask True where NOT allowed.

    The keyword arguments produce the usual mistakes, for diagnosis."""
    q64, k64, v64 = (t.detach().to("cpu", torch.float64) for t in (q, k, v))
    d_k = q.shape[-1]
    scale = 1.0 / math.sqrt(d_k) if scale is None else scale
    scores = q64 @ k64.transpose(-2, -1) * scale
    if mask is not None and not mask_after_softmax:
        scores = scores.masked_fill(mask.to("cpu"), mask_fill)
    weights = torch.softmax(scores, dim=softmax_dim) if apply_softmax else scores
    if mask is not None and mask_after_softmax:
        weights = weights.masked_fill(mask.to("cpu"), 0.0)
    return weights @ v64, weights


def self_attention(x: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor, w_v: torch.Tensor,
                   mask: torch.Tensor | None = None, **mistake):
    """Attention of x W_qᵀ, x W_kᵀ, x W_vᵀ (nn.Linear stores weights as (out, in))."""
    x64 = x.detach().to("cpu", torch.float64)
    q = x64 @ w_q.to(torch.float64).T
    k = x64 @ w_k.to(torch.float64).T
    v = x64 @ w_v.to(torch.float64).T
    return attention(q, k, v, mask, **mistake)


def attention_at_scale(q, k, v, mask=None, **kwargs):
    """f -> (output, weights) of `attention` with the scale 1/sqrt(d_k) multiplied by f:
    what checks.assert_close's precision policy needs (`at_scale`)."""
    return lambda f: attention(q, k, v, mask, scale=f / math.sqrt(q.shape[-1]), **kwargs)


def self_attention_at_scale(x, w_q, w_k, w_v, mask=None):
    """f -> the output of `self_attention` with the scale multiplied by f."""
    d_k = w_k.shape[0]
    return lambda f: self_attention(x, w_q, w_k, w_v, mask, scale=f / math.sqrt(d_k))[0]


def torch_single_head(x_q: torch.Tensor, x_kv: torch.Tensor, w_q, w_k, w_v,
                      mask: torch.Tensor | None = None,
                      key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
    """PyTorch's nn.MultiheadAttention with one head, no bias and an identity
    output projection: the same function as the course's attention.

    `mask` is its attn_mask ((Lq, Lk) or (N, Lq, Lk) for the N flattened
    leading dims); `key_padding_mask` (N, Lk); both bool, True = not allowed."""
    d = x_q.shape[-1]
    mha = torch.nn.MultiheadAttention(d, 1, bias=False, batch_first=True).to(torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([w_q, w_k, w_v]).to(torch.float64))
        mha.out_proj.weight.copy_(torch.eye(d, dtype=torch.float64))
    mha.train()  # the eval fast path changes masked outputs; train with dropout 0 does not
    lead = x_q.shape[:-2]
    xq = x_q.detach().to(torch.float64).reshape(-1, *x_q.shape[-2:])
    xk = x_kv.detach().to(torch.float64).reshape(-1, *x_kv.shape[-2:])
    out, _ = mha(xq, xk, xk, attn_mask=mask, key_padding_mask=key_padding_mask, need_weights=False)
    return out.reshape(*lead, *out.shape[-2:])


def causal_mask(size: int, device=None) -> torch.Tensor:
    return torch.triu(torch.ones(size, size, dtype=torch.bool, device=device), diagonal=1)


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    return torch.arange(max_len, device=lengths.device)[None, :] >= lengths[:, None]


# ------------------------------------------------------------------ exercise 3: cross-attention
def cross_attention(x_q, x_k, x_v, w_q, w_k, w_v, mask=None, *, sources: str = "qkv",
                    **mistake):
    """Attention(x_q W_qᵀ, x_k W_kᵀ, x_v W_vᵀ) in float64.

    `sources` names the input each of q, k, v is computed from ("qqv": keys
    taken from x_q...), to produce the usual mistakes."""
    inputs = {"q": x_q, "k": x_k, "v": x_v}
    q_src, k_src, v_src = (inputs[s].detach().to("cpu", torch.float64) for s in sources)
    q = q_src @ w_q.to(torch.float64).T
    k = k_src @ w_k.to(torch.float64).T
    v = v_src @ w_v.to(torch.float64).T
    return attention(q, k, v, mask, **mistake)


# ------------------------------------------------------------------ exercise 4: multi-head attention
def _linear(x, state, name, use_bias=True):
    y = x @ state[f"{name}.weight"].to(torch.float64).T
    bias = state.get(f"{name}.bias")
    if bias is not None and use_bias:
        y = y + bias.to(torch.float64)
    return y


def multi_head(query, key, value, state: dict, num_heads: int, attn_mask=None,
               key_padding_mask=None, *, split: str = "heads", merge: str = "heads",
               scale: float | None = None, use_w_o: bool = True, use_bias: bool = True,
               sources: str = "qkv", padding_axis: str = "keys", use_attn_mask: bool = True,
               use_padding: bool = True, invert_masks: bool = False, invert_combined: bool = False,
               **mistake):
    """The paper's MultiHead(Q, K, V) = Concat(head_1..head_h) W^O in float64,
    head h using features h*d_k:(h+1)*d_k of each projection.  Returns
    (output (B, Lq, D), weights (B, H, Lq, Lk)).

    The keyword arguments produce the usual mistakes:
    split  "heads" (view (B, L, H, d_k) + transpose), "view" (view (B, H, L, d_k)
           straight away), "strided" (view (B, L, d_k, H): every H-th feature);
    merge  "heads" (transpose back, then reshape), "view" (reshape without transpose),
           "strided" (the inverse of the strided split);
    padding_axis "keys" (B, 1, 1, Lk), "heads" ((B, 1, Lk): batch lined up with heads),
           "queries" (B, 1, Lq, 1);
    invert_masks inverts each mask before they are combined, invert_combined
           the combined mask (an inverted convention in the masked attention
           that both masks go through)."""
    inputs = {"q": query, "k": key, "v": value}
    xq, xk, xv = (inputs[s].detach().to("cpu", torch.float64) for s in sources)
    B, Lq, D = xq.shape
    Lk = xk.shape[1]
    H = num_heads
    d_k = D // H

    def heads(x, L):
        if split == "view":
            return x.reshape(B, H, L, d_k)
        if split == "strided":
            return x.reshape(B, L, d_k, H).permute(0, 3, 1, 2)
        return x.reshape(B, L, H, d_k).transpose(1, 2)

    q = heads(_linear(xq, state, "W_q", use_bias), Lq)
    k = heads(_linear(xk, state, "W_k", use_bias), Lk)
    v = heads(_linear(xv, state, "W_v", use_bias), Lk)
    mask = None
    if attn_mask is not None and use_attn_mask:
        mask = attn_mask.to("cpu")
        if invert_masks:
            mask = ~mask
    if key_padding_mask is not None and use_padding:
        kpm = key_padding_mask.to("cpu")
        if invert_masks:
            kpm = ~kpm
        if padding_axis == "heads":
            padding = kpm[:, None, :]
        elif padding_axis == "queries":
            padding = kpm[:, None, :, None]
        else:
            padding = kpm[:, None, None, :]
        mask = padding if mask is None else mask | padding
    if invert_combined and mask is not None:
        mask = ~mask
    scale = 1.0 / math.sqrt(d_k) if scale is None else scale
    out, weights = attention(q, k, v, mask, scale=scale, **mistake)    # (B, H, Lq, d_k)
    if merge == "view":
        concat = out.reshape(B, Lq, D)
    elif merge == "strided":
        concat = out.permute(0, 2, 3, 1).reshape(B, Lq, D)
    else:
        concat = out.transpose(1, 2).reshape(B, Lq, D)
    output = _linear(concat, state, "W_o", use_bias) if use_w_o else concat
    return output, weights


def torch_multi_head_module(state: dict, num_heads: int) -> torch.nn.MultiheadAttention:
    """torch.nn.MultiheadAttention(d_model, num_heads, bias=bias, batch_first=True) in
    float64 holding the weights of `state` (in_proj = cat(W_q, W_k, W_v), out_proj = W_o),
    in train() mode with dropout 0 (the eval fast path treats masks differently)."""
    bias = "W_q.bias" in state
    d = state["W_q.weight"].shape[0]
    mha = torch.nn.MultiheadAttention(d, num_heads, dropout=0.0, bias=bias,
                                      batch_first=True).to(torch.float64)
    f64 = {k: v.detach().to("cpu", torch.float64) for k, v in state.items()}
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([f64["W_q.weight"], f64["W_k.weight"], f64["W_v.weight"]]))
        mha.out_proj.weight.copy_(f64["W_o.weight"])
        if bias:
            mha.in_proj_bias.copy_(torch.cat([f64["W_q.bias"], f64["W_k.bias"], f64["W_v.bias"]]))
            mha.out_proj.bias.copy_(f64["W_o.bias"])
    return mha.train()


def torch_multi_head(query, key, value, state: dict, num_heads: int, attn_mask=None,
                     key_padding_mask=None):
    """nn.MultiheadAttention (torch_multi_head_module) called with need_weights=True,
    average_attn_weights=False.  Returns (output (B, Lq, D), weights (B, H, Lq, Lk))."""
    mha = torch_multi_head_module(state, num_heads)
    q, k, v = (t.detach().to("cpu", torch.float64) for t in (query, key, value))
    if key is query:
        k = q
    if value is key:
        v = k
    with torch.no_grad():
        out, weights = mha(q, k, v, attn_mask=None if attn_mask is None else attn_mask.to("cpu"),
                           key_padding_mask=None if key_padding_mask is None else key_padding_mask.to("cpu"),
                           need_weights=True, average_attn_weights=False)
    return out, weights


# ------------------------------------------------------------------ exercise 5: positional encoding
def sinusoidal(max_len: int, d_model: int, *, layout: str = "interleaved", exponent: str = "2i",
               divide: bool = True) -> torch.Tensor:
    """PE[pos, 2i] = sin(pos / 10000^(2i/d_model)), PE[pos, 2i+1] = cos(...), float64.

    The keyword arguments produce the usual mistakes: layout "swapped" (cos on
    even features), "concatenated" ([sin... | cos...]); exponent "i" (i/d_model
    instead of 2i/d_model), "feature" (each column j uses j/d_model, so the
    cosine of a pair gets 2i+1); divide=False multiplies by 10000^(...)."""
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]
    half = d_model // 2
    pair = torch.arange(half, dtype=torch.float64)
    if exponent == "feature":
        columns = torch.arange(d_model, dtype=torch.float64)
        power = torch.pow(torch.tensor(10000.0, dtype=torch.float64), columns / d_model)
        angle = pos / power if divide else pos * power
        pe = torch.empty(max_len, d_model, dtype=torch.float64)
        pe[:, 0::2] = torch.sin(angle[:, 0::2])
        pe[:, 1::2] = torch.cos(angle[:, 1::2])
        return pe
    two_i = pair if exponent == "i" else 2 * pair
    power = torch.pow(torch.tensor(10000.0, dtype=torch.float64), two_i / d_model)
    angle = pos / power if divide else pos * power                  # (max_len, d_model / 2)
    sin, cos = torch.sin(angle), torch.cos(angle)
    if layout == "concatenated":
        return torch.cat([sin, cos], dim=-1)
    if layout == "swapped":
        sin, cos = cos, sin
    return torch.stack([sin, cos], dim=-1).reshape(max_len, 2 * half)


# ------------------------------------------------------------------ exercises 6-7: layers, Transformer
def _mha_keys(prefix: str) -> list[str]:
    return [f"{prefix}.W_{p}.{kind}" for p in "qkvo" for kind in ("weight", "bias")]


LAYER_SUBLAYERS = {
    "encoder": (("self_attn", "self_attn"),),
    "decoder": (("self_attn", "self_attn"), ("cross_attn", "multihead_attn")),
}
LAYER_NORMS = {"encoder": ("norm1", "norm2"), "decoder": ("norm1", "norm2", "norm3")}


def layer_keys(kind: str) -> list[str]:
    """The contract's parameter names of an EncoderLayer / DecoderLayer."""
    keys = [k for name, _ in LAYER_SUBLAYERS[kind] for k in _mha_keys(name)]
    keys += [f"feed_forward.linear{i}.{w}" for i in (1, 2) for w in ("weight", "bias")]
    keys += [f"{norm}.{w}" for norm in LAYER_NORMS[kind] for w in ("weight", "bias")]
    return keys


def layer_state_to_torch(state: dict, kind: str, prefix: str = "") -> dict:
    """The contract's names -> nn.TransformerEncoderLayer / DecoderLayer's names:
    W_q/W_k/W_v -> in_proj_weight/bias (stacked in that order), W_o -> out_proj,
    feed_forward.linear1/2 -> linear1/2, norm1..3 -> norm1..3."""
    f = {k[len(prefix):]: v.detach().to("cpu", torch.float64) for k, v in state.items()
         if k.startswith(prefix)}
    out = {}
    for ours, theirs in LAYER_SUBLAYERS[kind]:
        out[f"{theirs}.in_proj_weight"] = torch.cat([f[f"{ours}.W_{p}.weight"] for p in "qkv"])
        out[f"{theirs}.in_proj_bias"] = torch.cat([f[f"{ours}.W_{p}.bias"] for p in "qkv"])
        out[f"{theirs}.out_proj.weight"] = f[f"{ours}.W_o.weight"]
        out[f"{theirs}.out_proj.bias"] = f[f"{ours}.W_o.bias"]
    for i in (1, 2):
        for w in ("weight", "bias"):
            out[f"linear{i}.{w}"] = f[f"feed_forward.linear{i}.{w}"]
    for norm in LAYER_NORMS[kind]:
        for w in ("weight", "bias"):
            out[f"{norm}.{w}"] = f[f"{norm}.{w}"]
    return out


def torch_layer(kind: str, state: dict, num_heads: int, prefix: str = "", *,
                norm_first: bool = False) -> torch.nn.Module:
    """nn.TransformerEncoderLayer / nn.TransformerDecoderLayer(d_model, num_heads,
    d_ff, dropout=0.0, batch_first=True, norm_first=False) in float64 with the
    student's weights, in train() mode: the eval-mode fast path treats padded
    positions differently, train mode with dropout 0 is the plain computation."""
    f = layer_state_to_torch(state, kind, prefix)
    d_ff, d_model = f["linear1.weight"].shape
    cls = torch.nn.TransformerEncoderLayer if kind == "encoder" else torch.nn.TransformerDecoderLayer
    layer = cls(d_model, num_heads, d_ff, dropout=0.0, batch_first=True, norm_first=norm_first,
                dtype=torch.float64)
    layer.load_state_dict(f)
    layer.train()
    return layer


def _f64(t):
    return None if t is None else t.detach().to("cpu", torch.float64)


def _merged_mask(attn_mask, key_padding_mask, num_heads: int, lq: int):
    """attn_mask (Lq, Lk) | key_padding_mask (B, Lk) as one bool mask
    (B * num_heads, Lq, Lk), batch-major: exactly what nn.MultiheadAttention
    builds inside.  Passing it merged skips PyTorch's key-padding check,
    whose first call imports sympy (seconds of start-up) for nothing."""
    if key_padding_mask is None:
        return None if attn_mask is None else attn_mask.to("cpu")
    pad = key_padding_mask.to("cpu")
    B, lk = pad.shape
    mask = pad[:, None, None, :].expand(B, num_heads, lq, lk)
    if attn_mask is not None:
        mask = mask | attn_mask.to("cpu")
    return mask.reshape(B * num_heads, lq, lk)


def run_layer(layer: torch.nn.Module, x, memory=None, tgt_mask=None, tgt_key_padding_mask=None,
              memory_key_padding_mask=None) -> torch.Tensor:
    """Call PyTorch's encoder layer (memory None) or decoder layer with the
    contract's masks (the same computation as passing them separately)."""
    H = layer.self_attn.num_heads
    T = x.shape[1]
    self_mask = _merged_mask(tgt_mask, tgt_key_padding_mask, H, T)
    if memory is None:
        return layer(x, src_mask=self_mask)
    return layer(x, memory, tgt_mask=self_mask,
                 memory_mask=_merged_mask(None, memory_key_padding_mask, H, T))


def encoder_layer(state: dict, num_heads: int, x, src_key_padding_mask=None, *, prefix: str = "",
                  norm_first: bool = False) -> torch.Tensor:
    layer = torch_layer("encoder", state, num_heads, prefix, norm_first=norm_first)
    with torch.no_grad():
        return run_layer(layer, _f64(x), tgt_key_padding_mask=src_key_padding_mask)


def decoder_layer(state: dict, num_heads: int, x, memory, tgt_mask=None, tgt_key_padding_mask=None,
                  memory_key_padding_mask=None, *, prefix: str = "", norm_first: bool = False) -> torch.Tensor:
    layer = torch_layer("decoder", state, num_heads, prefix, norm_first=norm_first)
    with torch.no_grad():
        return run_layer(layer, _f64(x), _f64(memory), tgt_mask, tgt_key_padding_mask,
                         memory_key_padding_mask)


def transformer_keys(num_layers: int, tie_weights: bool = False) -> list[str]:
    """The contract's parameter names of a Transformer (the pe buffer is not one)."""
    keys = ["src_embed.weight", "tgt_embed.weight"]
    keys += [f"encoder_layers.{i}.{k}" for i in range(num_layers) for k in layer_keys("encoder")]
    keys += [f"decoder_layers.{i}.{k}" for i in range(num_layers) for k in layer_keys("decoder")]
    keys += ([] if tie_weights else ["generator.weight"]) + ["generator.bias"]
    return keys


def transformer_parameter_count(src_vocab: int, tgt_vocab: int, d_model: int, num_layers: int,
                                d_ff: int, tie_weights: bool = False) -> int:
    d = d_model
    attention = 4 * (d * d + d)
    ffn = d * d_ff + d_ff + d_ff * d + d
    encoder = attention + ffn + 2 * 2 * d
    decoder = 2 * attention + ffn + 3 * 2 * d
    generator = (0 if tie_weights else d * tgt_vocab) + tgt_vocab
    return (src_vocab + tgt_vocab) * d + num_layers * (encoder + decoder) + generator


def queries_scaled(state: dict, factor: float) -> dict:
    """`state` with every attention's query projection (W_q weight and bias)
    multiplied by `factor`: the same as multiplying that attention's scale
    1/sqrt(d_k) by it.  How the precision policy's `at_scale` reaches inside
    PyTorch's layers, which take no scale."""
    return {k: (v * factor if ".W_q." in f".{k}" else v) for k, v in state.items()}


class TransformerReference:
    """The paper's Transformer assembled from PyTorch's layers, float64, with
    the student's weights (state_dict names of the contract):

        memory = EncoderLayer^N(embed(src) * sqrt(d_model) + PE)
        out    = DecoderLayer^N(embed(tgt) * sqrt(d_model) + PE, memory, causal mask)
        logits = generator(out)           (no final LayerNorm, as in the paper)

    The keyword arguments produce the usual mistakes: embed_scale (1, d_model),
    scale_after_pe, positional=False, final_norm=True (a LayerNorm after each
    stack), causal=False, memory_padding=False (the decoder ignores the source
    padding), encoder_padding=False."""

    def __init__(self, state: dict, num_heads: int, *, pe: torch.Tensor | None = None,
                 embed_scale: float | None = None, scale_after_pe: bool = False,
                 positional: bool = True, final_norm: bool = False, causal: bool = True,
                 memory_padding: bool = True, encoder_padding: bool = True) -> None:
        self.state = {k: v.detach().to("cpu", torch.float64) for k, v in state.items()}
        self.d_model = self.state["src_embed.weight"].shape[1]
        self.num_heads = num_heads
        self._layers: dict[str, list] = {}
        self.pe = pe
        self.embed_scale = math.sqrt(self.d_model) if embed_scale is None else embed_scale
        self.scale_after_pe = scale_after_pe
        self.positional = positional
        self.final_norm = final_norm
        self.causal = causal
        self.memory_padding = memory_padding
        self.encoder_padding = encoder_padding

    def _stack(self, kind: str) -> list:
        """The N PyTorch layers of one stack, built on first use."""
        if kind not in self._layers:
            prefix = f"{kind}_layers."
            numbers = sorted({int(k.split(".")[1]) for k in self.state if k.startswith(prefix)})
            self._layers[kind] = [torch_layer(kind, self.state, self.num_heads, f"{prefix}{i}.")
                                  for i in numbers]
        return self._layers[kind]

    @property
    def encoders(self) -> list:
        return self._stack("encoder")

    @property
    def decoders(self) -> list:
        return self._stack("decoder")

    def _pe(self, length: int) -> torch.Tensor:
        if self.pe is not None and self.pe.shape[0] >= length:
            return self.pe[:length].to(torch.float64)
        return sinusoidal(length, self.d_model).float().to(torch.float64)

    def embed(self, table: str, tokens: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.embedding(tokens.to("cpu"), self.state[f"{table}.weight"])
        pe = self._pe(tokens.shape[1]) if self.positional else 0.0
        if self.scale_after_pe:
            return (x + pe) * self.embed_scale
        return x * self.embed_scale + pe

    def _norm(self, x):
        if not self.final_norm:
            return x
        return torch.nn.functional.layer_norm(x, (self.d_model,))

    def encode(self, src, src_key_padding_mask=None) -> torch.Tensor:
        pad = src_key_padding_mask if self.encoder_padding else None
        x = self.embed("src_embed", src)
        with torch.no_grad():
            for layer in self.encoders:
                x = run_layer(layer, x, tgt_key_padding_mask=pad)
        return self._norm(x)

    def decode(self, tgt, memory, tgt_key_padding_mask=None, memory_key_padding_mask=None) -> torch.Tensor:
        mask = causal_mask(tgt.shape[1]) if self.causal else None
        mpad = memory_key_padding_mask if self.memory_padding else None
        x = self.embed("tgt_embed", tgt)
        memory = _f64(memory)
        with torch.no_grad():
            for layer in self.decoders:
                x = run_layer(layer, x, memory, mask, tgt_key_padding_mask, mpad)
        return self._norm(x)

    def generator(self, x) -> torch.Tensor:
        weight = self.state.get("generator.weight", self.state["tgt_embed.weight"])
        return torch.nn.functional.linear(_f64(x), weight, self.state["generator.bias"])

    def forward(self, src, tgt, src_key_padding_mask=None, tgt_key_padding_mask=None) -> torch.Tensor:
        memory = self.encode(src, src_key_padding_mask)
        return self.generator(self.decode(tgt, memory, tgt_key_padding_mask, src_key_padding_mask))

    def greedy(self, src, max_len: int, bos_id: int, eos_id: int, src_key_padding_mask=None):
        """Greedy decoding by the contract's rules. Returns (tokens (B, n), the
        smallest top-1/top-2 logit margin of any decision, {(row, step): the
        argmax a finished row would have produced})."""
        memory = self.encode(src, src_key_padding_mask)
        B = src.shape[0]
        ys = torch.full((B, 1), bos_id, dtype=torch.long)
        finished = torch.zeros(B, dtype=torch.bool)
        margin = math.inf
        shadow = {}
        for step in range(1, max_len):
            logits = self.generator(self.decode(ys, memory, None, src_key_padding_mask)[:, -1])
            top = logits.topk(2, dim=-1).values
            gaps = top[:, 0] - top[:, 1]
            if (~finished).any():
                margin = min(margin, float(gaps[~finished].min()))
            raw = logits.argmax(-1)
            for r in range(B):
                if finished[r]:
                    shadow[(r, step)] = int(raw[r])
            nxt = torch.where(finished, torch.full_like(raw, eos_id), raw)
            ys = torch.cat([ys, nxt[:, None]], dim=1)
            finished = finished | (nxt == eos_id)
            if finished.all():
                break
        return ys, margin, shadow
