"""The switch between the package's explicit attention and fused `scaled_dot_product_attention`.

The package computes softmax(QK^T / sqrt(d)) as a (B, heads, N, N) tensor and keeps it on each block
as `attn.scores`, which is what the attention pictures read. Training and inference do not need that
tensor, so they swap each attention module's class for one that calls the fused kernel (flash or
memory-efficient attention on a GPU). The parameters, the state dict and the function computed stay
the same; only `scores` is no longer kept.
"""
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from pytorch_pretrained_vit.transformer import MultiHeadedSelfAttention
from torch.utils.checkpoint import checkpoint


class FastSelfAttention(MultiHeadedSelfAttention):
    """The package's attention computed by `F.scaled_dot_product_attention`."""

    def forward(self, x, mask):
        b, n, d = x.shape
        q, k, v = (proj(x).view(b, n, self.n_heads, d // self.n_heads).transpose(1, 2)
                   for proj in (self.proj_q, self.proj_k, self.proj_v))
        bias = None
        if mask is not None:  # the package's additive mask: -10000 where mask == 0
            bias = -10000.0 * (1.0 - mask[:, None, None, :].to(q.dtype))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                             dropout_p=self.drop.p if self.training else 0.0)
        self.scores = None
        return out.transpose(1, 2).reshape(b, n, d)


ATTENTION_MODES = ("fast", "explicit")


def set_attention(model: torch.nn.Module, mode: str) -> torch.nn.Module:
    """Switch every attention module of `model` to `mode` ('fast' or 'explicit'), in place."""
    if mode not in ATTENTION_MODES:
        raise ValueError(f"attention mode must be one of {ATTENTION_MODES}, not {mode!r}")
    cls = FastSelfAttention if mode == "fast" else MultiHeadedSelfAttention
    for module in model.modules():
        if isinstance(module, MultiHeadedSelfAttention):
            module.__class__ = cls
    return model


@contextmanager
def explicit_attention(model: torch.nn.Module):
    """Run the block with explicit attention, so each block keeps `attn.scores`; restore after."""
    fast = [m for m in model.modules() if isinstance(m, FastSelfAttention)]
    set_attention(model, "explicit")
    try:
        yield model
    finally:
        for module in fast:
            module.__class__ = FastSelfAttention


def _checkpointed_blocks_forward(transformer, x, mask=None):
    for block in transformer.blocks:
        x = checkpoint(block, x, mask, use_reentrant=False) if transformer.training else block(x, mask)
    return x


def enable_grad_checkpointing(model: torch.nn.Module) -> None:
    """Recompute each block's activations in the backward pass: less memory, about 30% more compute."""
    transformer = model.transformer
    transformer.forward = _checkpointed_blocks_forward.__get__(transformer)
