"""AttnLRP's CP-LRP variant as a gradient: relevance = input x gradient through a network whose
gradients follow the LRP rules (Achtibat et al., "AttnLRP: Attention-Aware Layer-Wise Relevance
Propagation for Transformers", ICML 2024; the efficient mode of their library LXT,
github.com/rachtibat/LRP-eXplains-Transformers, `lxt/efficient`).

The forward pass computes the same function as the model; only the backward pass changes:
- LayerNorm: the division by the standard deviation is detached (the identity rule on the
  normalisation; the mean is still subtracted with its gradient), so (x - mean) / std is linear in x;
- softmax attention: the weights are computed from detached queries and keys, so relevance flows
  through the values only (CP-LRP: Ali et al., "XAI for Transformers: Better Explanations through
  Conservative Propagation", ICML 2022);
- GELU: the identity rule, output relevance = input relevance. LXT multiplies the gradient by
  GELU(x) / (x + 1e-10); for GELU(x) = x Phi(x) that ratio is Phi(x), the normal CDF, which is used
  here directly (no division, no epsilon). ReLU needs no change: its gradient already is
  ReLU(x) / x;
- every linear map (projections, the patch embedding, residual sums) keeps its gradient: LRP-0.

Each rule is a module class swapped in for the model's own while `cp_lrp_rules` is active, as
`models.attention.explicit_attention` swaps attention classes; parameters and state dicts stay.
With these gradients input x gradient is conservative: the sum of every input's relevance equals
the target logit less what the biases absorb (each Linear or LayerNorm bias, the position embedding
and the [class] token are additive terms of their own). `attnlrp_maps` reads the relevance at the
pixels, as LXT's ViT example does (`(image * image.grad).sum(1)`), and sums it over each patch: the
relevance of the patch's content, W x_p times the gradient at its token; the patch embedding's bias
and the position embedding are not part of any patch.
"""
import math
from contextlib import contextmanager

import torch
from pytorch_pretrained_vit.transformer import MultiHeadedSelfAttention, PositionWiseFeedForward
from torch import nn

from .maps import target_logits
from models.vit import grid_size


def conservative_layer_norm(x: torch.Tensor, weight, bias, eps: float) -> torch.Tensor:
    """LayerNorm over the last axis with its standard deviation held constant in the backward pass."""
    centered = x - x.mean(dim=-1, keepdim=True)
    with torch.no_grad():
        std = (centered.pow(2).mean(dim=-1, keepdim=True) + eps).sqrt()
    y = centered / std
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


def gelu_identity(x: torch.Tensor) -> torch.Tensor:
    """GELU(x) = x Phi(x) with Phi held constant: gradient x input of the output is its relevance."""
    with torch.no_grad():
        phi = torch.special.ndtr(x)
    return x * phi


class ConservativeLayerNorm(nn.LayerNorm):
    def forward(self, x):
        return conservative_layer_norm(x, self.weight, self.bias, self.eps)


class IdentityGeluFeedForward(PositionWiseFeedForward):
    """The package's feed-forward block with the identity rule on its GELU."""

    def forward(self, x):
        return self.fc2(gelu_identity(self.fc1(x)))


class ConstantWeightSelfAttention(MultiHeadedSelfAttention):
    """The package's explicit attention (no dropout: eval mode) with the softmax weights computed
    without gradient: the output is a fixed mixture of the values."""

    def forward(self, x, mask):
        b, n, d = x.shape

        def heads(t):  # (B, N, D) -> (B, heads, N, D / heads)
            return t.view(b, n, self.n_heads, d // self.n_heads).transpose(1, 2)

        with torch.no_grad():
            q, k = heads(self.proj_q(x)), heads(self.proj_k(x))
            scores = q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1])
            if mask is not None:  # the package's additive mask: -10000 where mask == 0
                scores = scores - 10000.0 * (1.0 - mask[:, None, None, :].float())
            scores = scores.softmax(dim=-1)
        self.scores = scores
        return (scores @ heads(self.proj_v(x))).transpose(1, 2).reshape(b, n, d)


# The package ViT's rules: each key class (and its subclasses, e.g. the fused attention classes of
# models.attention) is swapped for its value.
VIT_RULES = {
    MultiHeadedSelfAttention: ConstantWeightSelfAttention,
    PositionWiseFeedForward: IdentityGeluFeedForward,
    nn.LayerNorm: ConservativeLayerNorm,
}


@contextmanager
def cp_lrp_rules(model: nn.Module, rules: dict = VIT_RULES):
    """Eval mode and, for every module that is an instance of a key of `rules`, the value class in its
    place (the first key that matches); the classes and the mode are restored afterwards."""
    was_training = model.training
    swapped = []
    for module in model.modules():
        rule = next((new for old, new in rules.items() if isinstance(module, old)), None)
        if rule is not None:
            swapped.append((module, type(module)))
            module.__class__ = rule
    model.eval()
    try:
        yield model
    finally:
        for module, cls in swapped:
            module.__class__ = cls
        model.train(was_training)


def attnlrp_maps(model: nn.Module, images: torch.Tensor, target_class=None) -> tuple:
    """(logits, targets, maps (B, gh, gw)): each image's AttnLRP relevance of every patch for its
    target class (None: the predicted one; an int or a (B,) tensor), positive for evidence for it.

    One forward pass under the rules and one backward pass of the target logits summed over the batch
    (an image's logit depends on its own pixels only), down to the pixels; the parameters' `.grad`
    is left untouched.
    """
    gh, gw = grid_size(model)
    with torch.enable_grad(), cp_lrp_rules(model):
        pixels = images.detach().requires_grad_(True)
        logits = model(pixels)
        targets, chosen = target_logits(logits, target_class)
        (gradient,) = torch.autograd.grad(chosen.sum(), pixels)
    relevance = (pixels.detach() * gradient).sum(dim=1)  # (B, H, W)
    b, height, width = relevance.shape
    maps = relevance.reshape(b, gh, height // gh, gw, width // gw).sum(dim=(2, 4))
    return logits.detach(), targets, maps
