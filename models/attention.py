"""The switch between the package's explicit attention and fused `scaled_dot_product_attention`.

The package computes softmax(QK^T / sqrt(d)) as a (B, heads, N, N) tensor and keeps it on each block
as `attn.scores`, which is what the attention pictures read. Training and inference do not need that
tensor, so they swap each attention module's class for one that calls the fused kernel (flash or
memory-efficient attention on a GPU). The parameters, the state dict and the function computed stay
the same; only `scores` is no longer kept.

Modes: `explicit` (the package's), `sdpa` (the fused kernel after the package's three q/k/v
projections) and `fast` (one projection over the three weights concatenated, then the fused kernel:
one read of the LayerNorm output, cast once under autocast, and one larger matmul instead of three).
"""
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from pytorch_pretrained_vit.transformer import MultiHeadedSelfAttention
from torch.utils.checkpoint import checkpoint


class SdpaSelfAttention(MultiHeadedSelfAttention):
    """The package's attention computed by `F.scaled_dot_product_attention`."""

    def project(self, x):
        """(q, k, v), each (B, N, D)."""
        return self.proj_q(x), self.proj_k(x), self.proj_v(x)

    def forward(self, x, mask):
        b, n, d = x.shape
        q, k, v = (t.view(b, n, self.n_heads, d // self.n_heads).transpose(1, 2) for t in self.project(x))
        bias = None
        if mask is not None:  # the package's additive mask: -10000 where mask == 0
            bias = -10000.0 * (1.0 - mask[:, None, None, :].to(q.dtype))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                             dropout_p=self.drop.p if self.training else 0.0)
        self.scores = None
        return out.transpose(1, 2).reshape(b, n, d)


class FastSelfAttention(SdpaSelfAttention):
    """q, k and v from one matmul over the package's three weights, concatenated at each call.

    The concatenation reads 3 x D x D weights once per call, small beside the (B x N) x D x 3D
    product, and follows every optimizer step by construction; the state dict keeps the package's
    proj_q/proj_k/proj_v.
    """

    def project(self, x):
        weight = torch.cat([self.proj_q.weight, self.proj_k.weight, self.proj_v.weight])
        bias = torch.cat([self.proj_q.bias, self.proj_k.bias, self.proj_v.bias])
        return F.linear(x, weight, bias).chunk(3, dim=-1)


ATTENTION_MODES = ("fast", "sdpa", "explicit")
_CLASSES = {"fast": FastSelfAttention, "sdpa": SdpaSelfAttention, "explicit": MultiHeadedSelfAttention}


def set_attention(model: torch.nn.Module, mode: str) -> torch.nn.Module:
    """Switch every attention module of `model` to `mode` (one of ATTENTION_MODES), in place."""
    if mode not in ATTENTION_MODES:
        raise ValueError(f"attention mode must be one of {ATTENTION_MODES}, not {mode!r}")
    cls = _CLASSES[mode]
    for module in model.modules():
        if isinstance(module, MultiHeadedSelfAttention):
            module.__class__ = cls
    return model


def inference_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """`model` ready to predict: eval mode, fused attention (same function, no kept scores), on `device`."""
    return set_attention(model, "fast").eval().to(device)


@contextmanager
def explicit_attention(model: torch.nn.Module):
    """Run the block with explicit attention, so each block keeps `attn.scores`; restore after."""
    before = [(m, type(m)) for m in model.modules() if isinstance(m, MultiHeadedSelfAttention)]
    set_attention(model, "explicit")
    try:
        yield model
    finally:
        for module, cls in before:
            module.__class__ = cls


def _checkpointed_blocks_forward(transformer, x, mask=None):
    for block in transformer.blocks:
        x = checkpoint(block, x, mask, use_reentrant=False) if transformer.training else block(x, mask)
    return x


def enable_grad_checkpointing(model: torch.nn.Module) -> None:
    """Recompute each block's activations in the backward pass: less memory, about 30% more compute."""
    transformer = model.transformer
    transformer.forward = _checkpointed_blocks_forward.__get__(transformer)
