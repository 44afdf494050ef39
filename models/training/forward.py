"""A model's forward over one batch from a loader, as training, evaluation and prediction all run it.

A model carries its input contract, as timm's pretrained config does: `model.input_config` holds
the normalisation of the images it was trained on (`mean`, `std`) and their side (`image_size`). A
loader hands over uint8 images (or float ones already normalised); they are normalised on the
device by the model's own contract, so no caller passes the values along. A model without one takes
the package ViT's (data.transforms.MEAN and STD).
"""
import torch

from data.transforms import MEAN, STD, normalize_batch
from .runtime import unwrap


def input_config(model: torch.nn.Module) -> dict:
    """The inputs `model` (or the model inside its wrappers) takes: {"mean", "std", "image_size"}."""
    return getattr(unwrap(model), "input_config", None) or {"mean": MEAN, "std": STD, "image_size": None}


def model_inputs(model: torch.nn.Module, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A loader's batch as `model`'s float input on `device`, normalised by its input contract."""
    config = input_config(model)
    return normalize_batch(images, device, config["mean"], config["std"])


def batch_logits(model: torch.nn.Module, images: torch.Tensor, device: torch.device, amp) -> torch.Tensor:
    """`model`'s logits for one batch from a loader, under `amp`, the run's autocast context
    (models.training.runtime.autocast, built once)."""
    images = model_inputs(model, images, device)
    with amp:
        return model(images)
