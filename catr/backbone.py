"""The image side: a ResNet with frozen batch norm and a dilated last stage, plus the sine positions.

The module layout mirrors DETR's `Joiner` (a two-entry Sequential of body and position encoding), so
the published state dict's keys `backbone.0.body.*` load as they are.
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.resnet import Bottleneck, ResNet
from torchvision.ops import FrozenBatchNorm2d

from data.io import UserError
from data.transforms import MEAN, STD, normalize_batch

from .position_encoding import PositionEmbeddingSine

RESNET101_LAYERS = (3, 4, 23, 3)


def bottleneck_block(expansion: int) -> type:
    """torchvision's Bottleneck, whose output has `expansion` times its 64..512 planes (4 in ResNet)."""
    if expansion == Bottleneck.expansion:
        return Bottleneck
    return type(f"Bottleneck{expansion}x", (Bottleneck,), {"expansion": expansion})


class Backbone(nn.Module):
    """ResNet up to layer4: (B, 3, H, W) -> (B, 512 * expansion, ceil(H/16), ceil(W/16)), 2048 channels
    in ResNet-101.

    Batch norm statistics and affine terms are buffers (FrozenBatchNorm2d, eps 1e-5); layer4 trades its
    stride for dilation, so the output stride is 16 instead of 32. A smaller `expansion` narrows the
    output of every stage (a ResNet of the same classes, cheaper where its 1x1 convolutions dominate).
    """

    def __init__(self, layers=RESNET101_LAYERS, width_per_group: int = 64, expansion: int = Bottleneck.expansion):
        super().__init__()
        block = bottleneck_block(expansion)
        self.num_channels = 512 * block.expansion
        resnet = ResNet(block, list(layers), width_per_group=width_per_group,
                        replace_stride_with_dilation=[False, False, True], norm_layer=FrozenBatchNorm2d)
        stages = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
        self.body = nn.Sequential(OrderedDict((name, getattr(resnet, name)) for name in stages))

    def forward(self, images: Tensor, pixel_mask: Tensor) -> tuple:
        """Features and their padding mask (True on cells that come from padded pixels)."""
        features = self.body(images)
        mask = F.interpolate(pixel_mask[None].float(), size=features.shape[-2:])[0].bool()
        return features, mask


@torch.no_grad()
def calibrate_batch_norm(backbone: Backbone, images: Tensor) -> None:
    """Set every frozen batch norm's statistics to those of its input on `images` (normalised, B >= 2).

    A randomly initialised ResNet with FrozenBatchNorm2d has identity statistics, so nothing rescales
    its activations: on the synthetic scenes the tiny configuration's features come out at about 0.04,
    small beside the sine positions added to them, and a captioner trained on them learns a caption
    that ignores the image. Measured on one pass in forward order, each layer sees the already
    calibrated layers before it, so every stage's output has unit scale, as a trained network's has.
    """
    def set_statistics(layer, inputs):
        x = inputs[0].double()
        layer.running_mean.copy_(x.mean((0, 2, 3)))
        layer.running_var.copy_(x.var((0, 2, 3)))

    layers = [m for m in backbone.modules() if isinstance(m, FrozenBatchNorm2d)]
    hooks = [layer.register_forward_pre_hook(set_statistics) for layer in layers]
    try:
        backbone(images, torch.zeros(images.shape[0], *images.shape[-2:], dtype=torch.bool, device=images.device))
    finally:
        for hook in hooks:
            hook.remove()


class Joiner(nn.Sequential):
    """Backbone then position encoding: features, their padding mask and their positions."""

    def __init__(self, backbone: Backbone, position_encoding: PositionEmbeddingSine):
        super().__init__(backbone, position_encoding)
        self.num_channels = backbone.num_channels

    def forward(self, images: Tensor, pixel_mask: Tensor) -> tuple:
        features, mask = self[0](images, pixel_mask)
        return features, mask, self[1](mask).to(features.dtype)


def build_backbone(hidden_dim: int, layers=RESNET101_LAYERS, width_per_group: int = 64,
                   expansion: int = Bottleneck.expansion) -> Joiner:
    return Joiner(Backbone(layers, width_per_group, expansion), PositionEmbeddingSine(hidden_dim // 2))


CALIBRATION_IMAGES = 64  # the first training images a random backbone's batch norms are set from


def calibrate_on_images(backbone: Backbone, images: Tensor, device, advice: str = "") -> None:
    """`calibrate_batch_norm` on uint8 training images, normalised as CATR's input; fewer than 2 images
    are one line, ending with `advice`."""
    if len(images) < 2:
        raise UserError("training from random weights needs at least 2 training images to set the backbone's "
                        f"batch-norm statistics{advice}")
    calibrate_batch_norm(backbone, normalize_batch(images, device, MEAN, STD))
