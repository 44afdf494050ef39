"""Train and eval transforms, built from a model's image size and normalisation."""
from torchvision import transforms as T

# The package's weights were trained on inputs normalised with mean = std = 0.5.
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
AUGMENTATIONS = ("basic", "light", "strong")


def train_transform(size: int, mean=MEAN, std=STD, augment: str = "basic"):
    """`basic` is the seed report's pipeline; `light` crops at least half the image (for small
    synthetic shapes, which an 8% crop cuts away); `strong` adds TrivialAugment and random erasing."""
    scale = (0.5, 1.0) if augment == "light" else (0.08, 1.0)
    steps = [T.RandomResizedCrop((size, size), scale=scale), T.RandomHorizontalFlip()]
    if augment == "strong":
        steps.append(T.TrivialAugmentWide())
    steps += [T.ToTensor(), T.Normalize(mean, std)]
    if augment == "strong":
        steps.append(T.RandomErasing(p=0.25))
    return T.Compose(steps)


def eval_transform(size: int, mean=MEAN, std=STD):
    return T.Compose([T.Resize((size, size)), T.ToTensor(), T.Normalize(mean, std)])


def eval_transform_from_config(config: dict):
    return eval_transform(config["image_size"], config.get("mean", MEAN), config.get("std", STD))


def denormalize(x, mean=MEAN, std=STD):
    """A (3, H, W) normalised tensor back to an (H, W, 3) uint8 array: the image as the model saw it."""
    import torch

    mean = torch.tensor(mean, dtype=x.dtype).view(3, 1, 1)
    std = torch.tensor(std, dtype=x.dtype).view(3, 1, 1)
    return ((x * std + mean).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
