"""Batched prediction over a data set, and the accuracy figures computed from its results.

`predict` is the one loop that runs a trained model over images: eval mode, no gradients, bf16
autocast on CUDA, pinned host memory feeding the GPU. It returns the logits together with whatever
each item carried second (its label for a labeled `ImageFolder`, its index for an unlabeled one), so
inference, validation and benchmarks share it. `batch_logits` is its forward over one batch, which
the training engine's steps share too. The accuracy functions are pure tensor math.
"""
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from data.transforms import MEAN, STD, normalize_batch
from models.attention import set_attention
from .runtime import autocast


def inference_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """`model` ready to predict: eval mode, fused attention (same function, no kept scores), on `device`."""
    return set_attention(model, "fast").eval().to(device)


def make_loader(dataset, batch_size: int, num_workers: int, device: torch.device, sampler=None,
                collate_fn=None) -> DataLoader:
    """The one way a loader is built, for training, validation and prediction: in order unless a
    `sampler` orders (or shards) it; pinned memory lets the host-to-GPU copies overlap with compute;
    workers persist across epochs (every item is seeded by its own index, not by the worker)."""
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=num_workers,
                      pin_memory=device.type == "cuda", collate_fn=collate_fn, persistent_workers=num_workers > 0)


def batch_logits(model: torch.nn.Module, images: torch.Tensor, device: torch.device, precision: str = "bf16",
                 mean=MEAN, std=STD, training: bool = False) -> torch.Tensor:
    """`model`'s logits for one batch from a loader: uint8 images are normalised on `device` with
    `mean` and `std` (float ones pass as they are), then run under the autocast of `precision` by
    the inference policy, or by the training one with `training` (see models.training.runtime)."""
    images = normalize_batch(images, device, mean, std)
    with autocast(device, precision, training=training):
        return model(images)


@torch.inference_mode()
def predict(model: torch.nn.Module, loader, device: torch.device | None = None, precision: str = "bf16",
            progress: bool = False, desc: str = "predicting", mean=MEAN, std=STD) -> tuple:
    """Run `model` (already on `device`) over `loader`, which yields (images, targets) batches:
    normalised float images, or uint8 ones normalised on the device with `mean` and `std`.

    Returns (logits, targets): float32 logits (N, num_classes) on the CPU, in loader order, and the
    targets concatenated as given (labels or indices). `precision` 'bf16' autocasts on CUDA only;
    on a CPU the model runs in fp32 either way (see models.training.runtime.autocast).
    """
    device = device or next(model.parameters()).device
    model.eval()
    all_logits, all_targets = [], []
    for images, targets in tqdm(loader, desc=desc, unit="batch", disable=not progress):
        logits = batch_logits(model, images, device, precision, mean, std)
        all_logits.append(logits.float().cpu())
        all_targets.append(torch.as_tensor(targets))
    if not all_logits:
        raise ValueError("predict() was given an empty loader")
    return torch.cat(all_logits), torch.cat(all_targets)


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, num_classes) counts: row = true label, column = predicted label."""
    index = labels.long() * num_classes + predictions.long()
    return torch.bincount(index, minlength=num_classes * num_classes).view(num_classes, num_classes)


def accuracy(confusion: torch.Tensor) -> float:
    """Overall accuracy in percent."""
    return 100.0 * confusion.diag().sum().item() / max(confusion.sum().item(), 1)


def per_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """Accuracy in percent for each true class; NaN for a class with no images."""
    support = confusion.sum(dim=1).double()
    return 100.0 * confusion.diag().double() / support.where(support > 0, torch.tensor(float("nan")))
