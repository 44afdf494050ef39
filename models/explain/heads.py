"""Head importance: how much a model's loss depends on each attention head (Michel, Levy & Neubig,
"Are Sixteen Heads Really Better than One?", NeurIPS 2019, eq. 2).

Every head's output is multiplied by a gate xi_h before its layer's output projection, all gates 1,
so the model computes what it computes without them. The importance of head h is |dL / dxi_h| at
xi = 1: the first-order estimate of how much the loss L changes when the head is masked (xi_h = 0).
One forward and one backward pass give every head of every layer, where masking each head in turn
would take layers x heads forward passes (384 for ViT-L/16).

- `head_gates`: the gates, applied by forward pre-hooks on the output projections;
- `gate_importance`: |dL / dxi| of a loss computed while the gates are in place;
- `vit_head_importance`: a package ViT's heads, L the cross-entropy of the predicted class.
"""
from contextlib import contextmanager

import torch
import torch.nn.functional as F


@contextmanager
def head_gates(projections, heads: int):
    """Yields gates (layers, heads), all 1, that multiply each head's slice of the input of
    `projections[layer]`, a module that takes the heads' outputs concatenated on the last axis."""
    weight = projections[0].weight
    gates = torch.ones(len(projections), heads, dtype=weight.dtype, device=weight.device, requires_grad=True)

    def gate(layer):
        def pre_hook(_module, args):
            x = args[0]
            per_feature = gates[layer].to(x.dtype).repeat_interleave(x.shape[-1] // heads)
            return (x * per_feature, *args[1:])
        return pre_hook

    handles = [projection.register_forward_pre_hook(gate(layer)) for layer, projection in enumerate(projections)]
    try:
        yield gates
    finally:
        for handle in handles:
            handle.remove()


def gate_importance(loss_of, projections, heads: int) -> torch.Tensor:
    """(layers, heads) |dL / dxi_h| of the loss `loss_of()` computes with the gates in place. Only the
    gates' gradient is computed: the parameters' `.grad` is left untouched."""
    with torch.enable_grad(), head_gates(projections, heads) as gates:
        (gradient,) = torch.autograd.grad(loss_of(), gates)
    return gradient.abs().float()


def vit_head_importance(model, image: torch.Tensor) -> torch.Tensor:
    """(layers, heads) importance of a package ViT's heads for one image (1, 3, H, W): the loss is
    the cross-entropy of the class the model predicts, as the page's maps explain that class."""
    if image.shape[0] != 1:
        raise ValueError(f"vit_head_importance takes one image, got a batch of {image.shape[0]}")
    was_training = model.training
    model.eval()  # dropout would make the gradient random
    blocks = model.transformer.blocks
    try:
        def loss():
            logits = model(image.detach())
            return F.cross_entropy(logits, logits.argmax(dim=-1))
        return gate_importance(loss, [block.proj for block in blocks], blocks[0].attn.n_heads)
    finally:
        model.train(was_training)
