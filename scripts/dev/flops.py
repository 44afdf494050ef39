"""The matrix work of a package ViT, counted from its configuration.

Counted in multiply-accumulates (MACs, 1 MAC = 2 FLOP) per image: the patch-embedding convolution,
the q/k/v and output projections, the two attention matmuls (QK^T and scores @ V), the MLP and the
head. Layer norms, softmax, GELU, biases and residual additions are a fraction of a percent and left
out, as is usual. A training step costs 3x the forward pass (the backward computes gradients for
both inputs and weights of every matmul); recomputation by gradient checkpointing is not counted, so
TFLOP/s from these figures is model-FLOP utilisation. For ViT-L/16 at 384 this gives 191 GMACs
(382 GFLOP) forward, 16.4 GMACs of them in attention.
"""
from pytorch_pretrained_vit import ViT

TRAINING_FACTOR = 3


def vit_macs(image_size: int | tuple, patch: int | tuple, dim: int, ff_dim: int, num_layers: int,
             num_classes: int, in_channels: int = 3, class_token: bool = True) -> dict:
    """Forward MACs per image by part: patch_embedding, projections, attention, mlp, head."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    ph, pw = (patch, patch) if isinstance(patch, int) else patch
    patches = (h // ph) * (w // pw)
    tokens = patches + int(class_token)
    return {
        "patch_embedding": patches * in_channels * ph * pw * dim,
        "projections": num_layers * 4 * tokens * dim * dim,    # q, k, v and the block's proj
        "attention": num_layers * 2 * tokens * tokens * dim,   # QK^T and scores @ V, all heads
        "mlp": num_layers * 2 * tokens * dim * ff_dim,
        "head": dim * num_classes,
    }


def model_macs(model: ViT) -> dict:
    """`vit_macs` of a built package ViT (a model on the meta device will do)."""
    conv = model.patch_embedding
    blocks = model.transformer.blocks
    return vit_macs(image_size=model.image_size, patch=conv.kernel_size, dim=conv.out_channels,
                    ff_dim=blocks[0].pwff.fc1.out_features, num_layers=len(blocks),
                    num_classes=model.fc.out_features, in_channels=conv.in_channels,
                    class_token=hasattr(model, "class_token"))


def forward_flops(model: ViT) -> int:
    """FLOP of one image's forward pass."""
    return 2 * sum(model_macs(model).values())


def training_flops(model: ViT) -> int:
    """FLOP of one image's training step (forward and backward)."""
    return TRAINING_FACTOR * forward_flops(model)
