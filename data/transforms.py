"""Train and eval transforms, built from a model's image size and normalisation.

Two ways to feed a model. The float path (`to_float=True`) returns normalised float tensors from
the transform itself. The uint8 path returns the cropped image as a uint8 tensor, a quarter of the
bytes between processes and to the GPU, and `normalize_batch` turns a batch into the model's input
on the device: the same operations in the same order, so the two paths give identical tensors.
"""
import functools

import torch
from torchvision import transforms as T

# The package ViT's weights were trained on inputs normalised with mean = std = 0.5, and so were CATR's
# (its Normalize(0.5, 0.5)): the one home of both models' normalisation.
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
AUGMENTATIONS = ("basic", "light", "strong")


def _finish(steps: list, mean, std, to_float: bool) -> T.Compose:
    if to_float:
        return T.Compose(steps + [T.ToTensor(), T.Normalize(mean, std)])
    return T.Compose(steps + [T.PILToTensor()])


def train_transform(size: int, mean=MEAN, std=STD, augment: str = "basic", to_float: bool = True):
    """`basic` is the default recipe's pipeline (RandomResizedCrop + flip); `light` crops at least half the image (for small
    synthetic shapes, which an 8% crop cuts away); `strong` adds TrivialAugment and random erasing.

    Random erasing fills with zeros after normalisation, a value a uint8 image cannot hold, so
    `strong` always returns float tensors.
    """
    scale = (0.5, 1.0) if augment == "light" else (0.08, 1.0)
    steps = [T.RandomResizedCrop((size, size), scale=scale), T.RandomHorizontalFlip()]
    if augment == "strong":
        steps.append(T.TrivialAugmentWide())
        return T.Compose([_finish(steps, mean, std, True), T.RandomErasing(p=0.25)])
    return _finish(steps, mean, std, to_float)


def eval_transform(size: int, mean=MEAN, std=STD, to_float: bool = True):
    return _finish([T.Resize((size, size))], mean, std, to_float)


def eval_transform_from_config(config: dict, to_float: bool = True):
    return eval_transform(config["image_size"], *normalization(config), to_float=to_float)


def normalization(config: dict) -> tuple:
    """(mean, std) a checkpoint's model expects; older configs without them used the package's."""
    return tuple(config.get("mean", MEAN)), tuple(config.get("std", STD))


def normalize_batch(images: torch.Tensor, device: torch.device, mean=MEAN, std=STD) -> torch.Tensor:
    """A batch from either path as the model's float input on `device`.

    uint8 batches are copied as bytes, then converted and normalised where they land, exactly as
    ToTensor (x / 255) and Normalize ((x - mean) / std) do on the host; float batches pass through.
    """
    images = images.to(device, non_blocking=True)
    if images.dtype != torch.uint8:
        return images
    mean, std = _channel_stats(tuple(mean), tuple(std), torch.device(device))
    return images.float().div_(255).sub_(mean).div_(std)


@functools.lru_cache(maxsize=8)
def _channel_stats(mean: tuple, std: tuple, device: torch.device) -> tuple:
    """(mean, std) as (C, 1, 1) tensors on `device`, made once: a copy to a GPU per batch would wait."""
    return (torch.tensor(mean, dtype=torch.float32, device=device).view(-1, 1, 1),
            torch.tensor(std, dtype=torch.float32, device=device).view(-1, 1, 1))


def denormalize(x, mean=MEAN, std=STD):
    """A (3, H, W) normalised tensor back to an (H, W, 3) uint8 array: the image as the model saw it."""
    mean = torch.tensor(mean, dtype=x.dtype).view(3, 1, 1)
    std = torch.tensor(std, dtype=x.dtype).view(3, 1, 1)
    return ((x * std + mean).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
