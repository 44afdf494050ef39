"""CATR's pre-norm encoder-decoder transformer and its text embeddings.

Everything is batch first: (B, L, D). Masks are boolean with True meaning "may not attend", as in
nn.MultiheadAttention. Parameter names follow the published state dict (`self_attn.in_proj_weight`,
`multihead_attn`, `norm1..3`, `embeddings.LayerNorm`, ...).

The decoder sees the image only through the keys and values each layer projects from the encoder's
memory: `TransformerDecoder.project_memory` computes them once per image. Its self-attention keys and
values of earlier words never change (causal mask, fixed position per slot), so `Transformer.decode`
returns them and takes them back: a caption is generated one word per call, each call computing only
that word.
"""
import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MultiheadAttention(nn.Module):
    """nn.MultiheadAttention's parameters and math, batch first, returning per-head weights.

    Keys and values are projected separately (`project_kv`) so that fixed ones can be reused.
    """

    def __init__(self, d_model: int, nheads: int, dropout: float):
        super().__init__()
        self.nheads = nheads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def _project(self, x: Tensor, index: int) -> Tensor:
        """Query (0), key (1) or value (2) projection of (B, L, D), split into (B, heads, L, D/heads)."""
        weight, bias = self.in_proj_weight.chunk(3)[index], self.in_proj_bias.chunk(3)[index]
        batch, length, dim = x.shape
        return F.linear(x, weight, bias).view(batch, length, self.nheads, dim // self.nheads).transpose(1, 2)

    def project_kv(self, key: Tensor, value: Tensor) -> tuple:
        return self._project(key, 1), self._project(value, 2)

    def attention_weights(self, query: Tensor, keys: Tensor, ignore: Tensor = None) -> Tensor:
        """Softmax weights (B, heads, L, S) of (B, L, D) queries over projected keys of length S."""
        q = self._project(query, 0)
        scores = q @ keys.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if ignore is not None:
            scores = scores.masked_fill(ignore, float("-inf"))
        return scores.softmax(dim=-1)

    def forward(self, query: Tensor, keys_values: tuple, ignore: Tensor = None) -> tuple:
        """Attend from (B, L, D) queries to projected keys and values of length S.

        `ignore` broadcasts to (B, heads, L, S). Returns the output (B, L, D) and the attention weights
        (B, heads, L, S), each row summing to 1.
        """
        keys, values = keys_values
        weights = self.attention_weights(query, keys, ignore)
        out = F.dropout(weights, self.dropout, self.training) @ values
        return self.out_proj(out.transpose(1, 2).flatten(2)), weights


class TransformerEncoderLayer(nn.Module):
    """Pre-norm: self-attention over the image cells (positions added to queries and keys), then FFN."""

    def __init__(self, d_model: int, nheads: int, dim_feedforward: int, dropout: float):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nheads, dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src: Tensor, pos: Tensor, ignore: Tensor) -> Tensor:
        x = self.norm1(src)
        q = x + pos
        src = src + self.dropout(self.self_attn(q, self.self_attn.project_kv(q, x), ignore)[0])
        x = self.norm2(src)
        return src + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(x)))))


class TransformerDecoderLayer(nn.Module):
    """Pre-norm: causal self-attention over the words, cross-attention to the image, then FFN.

    `query_pos` (the text position table) is added to the queries of both attentions and to the keys
    of the self-attention; the image positions are already inside the projected memory keys.
    """

    def __init__(self, d_model: int, nheads: int, dim_feedforward: int, dropout: float):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nheads, dropout)
        self.multihead_attn = MultiheadAttention(d_model, nheads, dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tgt: Tensor, query_pos: Tensor, self_ignore: Tensor, memory_kv: tuple,
                memory_ignore: Tensor, past_kv: tuple = None) -> tuple:
        """New word states, cross-attention weights (B, heads, L, S) and the self-attention keys and
        values of all words so far (`past_kv`, those of the words before `tgt`, first)."""
        x = self.norm1(tgt)
        q = x + query_pos
        keys, values = self.self_attn.project_kv(q, x)
        if past_kv is not None:
            keys, values = torch.cat((past_kv[0], keys), dim=2), torch.cat((past_kv[1], values), dim=2)
        tgt = tgt + self.dropout(self.self_attn(q, (keys, values), self_ignore)[0])
        attended, cross_weights = self.multihead_attn(self.norm2(tgt) + query_pos, memory_kv, memory_ignore)
        tgt = tgt + self.dropout(attended)
        x = self.norm3(tgt)
        return tgt + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(x))))), cross_weights, (keys, values)


class TransformerEncoder(nn.Module):
    def __init__(self, layer: TransformerEncoderLayer, num_layers: int, d_model: int):
        super().__init__()
        self.layers = _clones(layer, num_layers)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, src: Tensor, pos: Tensor, padding_mask: Tensor) -> Tensor:
        """(B, S, D) image cells, their positions and (B, S) padding mask -> (B, S, D) memory."""
        ignore = padding_mask[:, None, None, :]
        for layer in self.layers:
            src = layer(src, pos, ignore)
        return self.norm(src)


class TransformerDecoder(nn.Module):
    def __init__(self, layer: TransformerDecoderLayer, num_layers: int, d_model: int):
        super().__init__()
        self.layers = _clones(layer, num_layers)
        self.norm = nn.LayerNorm(d_model)

    def project_memory(self, memory: Tensor, pos: Tensor) -> list:
        """Each layer's cross-attention keys (from memory + pos) and values (from memory)."""
        return [layer.multihead_attn.project_kv(memory + pos, memory) for layer in self.layers]

    def forward(self, tgt: Tensor, query_pos: Tensor, self_ignore: Tensor, memory_kvs: list,
                memory_padding_mask: Tensor, past: list = None) -> tuple:
        """Word states (B, L, D), the list over layers of cross-attention weights (B, heads, L, S), and
        the list over layers of self-attention (keys, values) of all words so far."""
        memory_ignore = memory_padding_mask[:, None, None, :]
        cross_weights, present = [], []
        for layer, memory_kv, past_kv in zip(self.layers, memory_kvs, past or [None] * len(self.layers)):
            tgt, weights, kv = layer(tgt, query_pos, self_ignore, memory_kv, memory_ignore, past_kv)
            cross_weights.append(weights)
            present.append(kv)
        return self.norm(tgt), cross_weights, present


class TextEmbeddings(nn.Module):
    """BERT-style word + learned position embeddings, LayerNorm (BERT's eps 1e-12) and dropout."""

    def __init__(self, vocab_size: int, d_model: int, max_length: int, dropout: float, pad_id: int):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.position_embeddings = nn.Embedding(max_length, d_model)
        self.LayerNorm = nn.LayerNorm(d_model, eps=1e-12)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: Tensor, start: int = 0) -> Tensor:
        """(B, L) ids at positions start..start+L-1 -> (B, L, D); position i gets row i of the table."""
        positions = self.position_embeddings.weight[start: start + tokens.shape[1]]
        return self.dropout(self.LayerNorm(self.word_embeddings(tokens) + positions))


class Transformer(nn.Module):
    """Encoder over the image cells, decoder over the words (at most `max_length`)."""

    def __init__(self, d_model: int, nheads: int, num_encoder_layers: int, num_decoder_layers: int,
                 dim_feedforward: int, dropout: float, vocab_size: int, max_length: int, pad_id: int):
        super().__init__()
        self.encoder = TransformerEncoder(
            TransformerEncoderLayer(d_model, nheads, dim_feedforward, dropout), num_encoder_layers, d_model)
        self.embeddings = TextEmbeddings(vocab_size, d_model, max_length, dropout, pad_id)
        self.decoder = TransformerDecoder(
            TransformerDecoderLayer(d_model, nheads, dim_feedforward, dropout), num_decoder_layers, d_model)
        self._reset_parameters()

    def _reset_parameters(self):
        # The reference initialises every matrix of the transformer (embeddings included) this way.
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def decode(self, tokens: Tensor, token_padding_mask: Tensor, memory_kvs: list, memory_padding_mask: Tensor,
               past: list = None) -> tuple:
        """Word states (B, L, D) for (B, L) ids, the per-layer cross-attention weights (B, heads, L, S),
        and the per-layer self-attention keys and values of all words so far.

        Position i sees words 0..i only (causal mask) and gets row i of the text position table as the
        decoder's `query_pos`: the states of a prefix do not depend on anything after it. `past`, what
        an earlier call returned, stands for the words before `tokens`, which then take the positions
        after them. `token_padding_mask` (B, past + L), True on padding, may be None: no padding.
        """
        start = 0 if past is None else past[0][0].shape[2]
        length = tokens.shape[1]
        causal = torch.ones(length, start + length, dtype=torch.bool, device=tokens.device).triu(start + 1)
        self_ignore = causal[None, None]  # query i, at position start + i, sees keys 0..start + i
        if token_padding_mask is not None:
            self_ignore = self_ignore | token_padding_mask[:, None, None, :]
        query_pos = self.embeddings.position_embeddings.weight[start: start + length]
        return self.decoder(self.embeddings(tokens, start), query_pos, self_ignore, memory_kvs, memory_padding_mask,
                            past)


def _clones(layer: nn.Module, n: int) -> nn.ModuleList:
    return nn.ModuleList(copy.deepcopy(layer) for _ in range(n))
