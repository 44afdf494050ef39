"""One epoch of training and one pass of evaluation, the same in one process and under torchrun."""
import contextlib

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .distributed import all_reduce_sum
from .runtime import autocast


def train_one_epoch(model, loader, optimizer, scheduler, device, precision="bf16", grad_accum=1,
                    label_smoothing=0.0, clip_grad=0.0, progress=True, desc="train") -> dict:
    """Train over `loader` once; returns the mean loss, accuracy (%) and the last learning rate."""
    model.train()
    totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, seen
    optimizer.zero_grad(set_to_none=True)
    lr = optimizer.param_groups[0]["lr"]
    bar = tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    for step, (images, labels) in enumerate(bar):
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        update = (step + 1) % grad_accum == 0 or step + 1 == len(loader)
        # Under DDP, gradients are all-reduced only on the micro-step that updates the weights.
        sync = contextlib.nullcontext() if update or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            with autocast(device, precision):
                logits = model(images)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
            (loss / grad_accum).backward()
        if update:
            if clip_grad > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            totals += torch.stack([loss.detach().double() * len(labels),
                                   (logits.argmax(1) == labels).sum().double(),
                                   torch.tensor(len(labels), dtype=torch.float64, device=device)])
        if progress and step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.2e}")
    loss_sum, correct, seen = all_reduce_sum(totals.tolist(), device)
    return {"train_loss": loss_sum / seen, "train_acc": 100.0 * correct / seen, "lr": lr}


@torch.no_grad()
def evaluate(model, loader, device, precision="bf16", progress=True) -> dict:
    """Loss and accuracy (%) over every item of `loader`'s data set, summed over all processes."""
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    for images, labels in tqdm(loader, desc="val", disable=not progress, leave=False, dynamic_ncols=True):
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        with autocast(device, precision):
            logits = model(images)
        loss = F.cross_entropy(logits.float(), labels, reduction="sum")
        totals += torch.stack([loss.double(), (logits.argmax(1) == labels).sum().double(),
                               torch.tensor(len(labels), dtype=torch.float64, device=device)])
    loss_sum, correct, seen = all_reduce_sum(totals.tolist(), device)
    return {"val_loss": loss_sum / seen, "val_acc": 100.0 * correct / seen, "val_seen": int(seen)}
