"""Exercise 7 as the grader provides it: nn.TransformerEncoder /
nn.TransformerDecoder (no final LayerNorm, as in the paper) run on the
contract's layers' weights, with the grader's positional encoding."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from grader.reference import explained
from grader.reference._attend import merged_mask
from grader.reference._layers import builtin_state, call_builtin, unregistered
from grader.reference.ex02_masks import causal_mask
from grader.reference.ex05_positional_encoding import PositionalEncoding
from grader.reference.ex06_blocks import DecoderLayer, EncoderLayer

__all__ = ["Transformer", "greedy_decode"]


class Transformer(nn.Module):
    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=512, num_heads=8, num_layers=6,
                 d_ff=2048, dropout=0.1, max_len=5000, tie_weights=False):
        super().__init__()
        self.d_model = d_model
        self.src_embed = nn.Embedding(src_vocab_size, d_model)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model)
        self.positional = PositionalEncoding(d_model, max_len, dropout)
        self.encoder_layers = nn.ModuleList(
            EncoderLayer(d_model, num_heads, d_ff, dropout) for _ in range(num_layers))
        self.decoder_layers = nn.ModuleList(
            DecoderLayer(d_model, num_heads, d_ff, dropout) for _ in range(num_layers))
        self.generator = nn.Linear(d_model, tgt_vocab_size)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        if tie_weights:
            self.generator.weight = self.tgt_embed.weight
        if num_layers:
            unregistered(self, "_encoder", nn.TransformerEncoder(
                copy.deepcopy(self.encoder_layers[0]._builtin), num_layers,
                enable_nested_tensor=False))
            unregistered(self, "_decoder", nn.TransformerDecoder(
                copy.deepcopy(self.decoder_layers[0]._builtin), num_layers))

    def _heads(self):
        return self.encoder_layers[0].self_attn.num_heads

    def _embed(self, table, tokens):
        return self.positional(F.embedding(tokens, table.weight) * math.sqrt(self.d_model))

    def _stack_state(self, kind):
        layers = self.encoder_layers if kind == "encoder" else self.decoder_layers
        state = {}
        for i, layer in enumerate(layers):
            state.update(builtin_state(layer, kind, f"layers.{i}."))
        return state

    @explained("exercise 7 Transformer.encode")
    def encode(self, src, src_key_padding_mask=None):
        x = self._embed(self.src_embed, src)
        if not len(self.encoder_layers):
            return x
        S = x.shape[1]
        return call_builtin(self._encoder, self._stack_state("encoder"), self.training, x,
                            mask=merged_mask(None, src_key_padding_mask, self._heads(), S, S))

    @explained("exercise 7 Transformer.decode")
    def decode(self, tgt, memory, tgt_key_padding_mask=None, memory_key_padding_mask=None):
        x = self._embed(self.tgt_embed, tgt)
        if not len(self.decoder_layers):
            return x
        H, T, S = self._heads(), tgt.shape[1], memory.shape[1]
        causal = causal_mask(T, device=tgt.device)
        return call_builtin(self._decoder, self._stack_state("decoder"), self.training, x, memory,
                            tgt_mask=merged_mask(causal, tgt_key_padding_mask, H, T, T),
                            memory_mask=merged_mask(None, memory_key_padding_mask, H, T, S))

    @explained("exercise 7 Transformer")
    def forward(self, src, tgt, src_key_padding_mask=None, tgt_key_padding_mask=None):
        memory = self.encode(src, src_key_padding_mask)
        return self.generator(self.decode(tgt, memory, tgt_key_padding_mask, src_key_padding_mask))


@explained("exercise 7 greedy_decode")
@torch.no_grad()
def greedy_decode(model, src, max_len, bos_id, eos_id, src_key_padding_mask=None):
    memory = model.encode(src, src_key_padding_mask)
    ys = torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)
    done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
    while ys.shape[1] < max_len and not done.all():
        logits = model.generator(model.decode(ys, memory, None, src_key_padding_mask)[:, -1])
        token = logits.argmax(-1).masked_fill(done, eos_id)
        ys = torch.cat([ys, token[:, None]], dim=1)
        done |= token == eos_id
    return ys
