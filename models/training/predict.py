"""Batched prediction over a data set: the one loop that runs a trained model over images.

Eval mode, no gradients, the inference precision policy (bf16 autocast on CUDA), pinned host memory
feeding the GPU. It returns the logits together with whatever each item carried second (its label
for a labeled `ImageFolder`, its index for an unlabeled one), so inference and benchmarks share it.
"""
import torch
from tqdm import tqdm

from .forward import batch_logits
from .runtime import autocast


@torch.inference_mode()
def predict(model: torch.nn.Module, loader, device: torch.device | None = None, precision: str = "bf16",
            progress: bool = False, desc: str = "predicting") -> tuple:
    """Run `model` (already on `device`) over `loader`, which yields (images, targets) batches:
    normalised float images, or uint8 ones normalised on the device by the model's input contract
    (models.training.forward).

    Returns (logits, targets): float32 logits (N, num_classes) on the CPU, in loader order, and the
    targets concatenated as given (labels or indices). `precision` 'bf16' autocasts on CUDA only;
    on a CPU the model runs in fp32 either way (see models.training.runtime.run_precision).
    """
    device = device or next(model.parameters()).device
    amp = autocast(device, precision)
    model.eval()
    all_logits, all_targets = [], []
    for images, targets in tqdm(loader, desc=desc, unit="batch", disable=not progress):
        logits = batch_logits(model, images, device, amp)
        all_logits.append(logits.float().cpu())
        all_targets.append(torch.as_tensor(targets))
    if not all_logits:
        raise ValueError("predict() was given an empty loader")
    return torch.cat(all_logits), torch.cat(all_targets)
