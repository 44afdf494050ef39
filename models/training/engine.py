"""One epoch of training and one pass of evaluation, the same in one process and under torchrun.

Nothing here waits for the device inside the loop: losses and correct counts are summed on the
device and read once per pass (and by the progress bar every `PROGRESS_EVERY` steps), images are
counted on the host, and a non-finite loss is noted on the device as the first step it happened at,
checked whenever the totals are read. A uint8 batch is converted and normalised on the device.
"""
import contextlib
import time

import torch
import torch.nn.functional as F
from tqdm import tqdm

from data.io import UserError
from data.transforms import MEAN, STD, normalize_batch
from .distributed import all_reduce_sum
from .runtime import autocast

PROGRESS_EVERY = 50  # steps between progress-bar updates, each of which waits for the device


class NonFiniteLoss(UserError):
    """The training loss became NaN or infinite; the run stops before anything is saved."""


def make_loss_step(model, device, precision="bf16", label_smoothing=0.0):
    """forward + loss as one function of (images, labels) -> (loss, logits): what `--compile` compiles."""
    def loss_step(images, labels):
        with autocast(device, precision, training=True):
            logits = model(images)
        return F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing), logits
    return loss_step


class _Totals:
    """Loss sum and correct count on the device, the image count on the host, and the first step
    (0-based, -1 for none) whose loss was not finite."""

    def __init__(self, device):
        self.sums = torch.zeros(2, dtype=torch.float64, device=device)
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)
        self.seen = 0

    def add(self, step, loss_sum, logits, labels):
        self.sums += torch.stack([loss_sum.detach().double(), (logits.argmax(1) == labels).sum().double()])
        bad = ~torch.isfinite(loss_sum.detach())
        self.first_bad = torch.where(bad & (self.first_bad < 0), step, self.first_bad)
        self.seen += len(labels)

    def read(self, epoch=None) -> tuple:
        """(loss sum, correct, seen, number of processes that saw a non-finite loss) over all processes."""
        loss_sum, correct, bad = torch.cat([self.sums, self.first_bad.double()[None]]).tolist()  # one read
        bad = int(bad)
        loss_sum, correct, seen, bad_ranks = all_reduce_sum([loss_sum, correct, self.seen, bad >= 0], self.sums.device)
        if bad_ranks and epoch is not None:
            where = f"epoch {epoch}, step {bad + 1}" if bad >= 0 else f"epoch {epoch} (in another process)"
            raise NonFiniteLoss(f"the training loss became NaN or infinite at {where}; stopped without "
                                "saving this epoch (try a lower --lr, --clip_grad or --precision fp32)")
        return loss_sum, correct, seen


def train_one_epoch(model, loader, optimizer, scheduler, device, precision="bf16", grad_accum=1,
                    label_smoothing=0.0, clip_grad=0.0, progress=True, desc="train", epoch=1,
                    compiled_step=None, mean=MEAN, std=STD) -> dict:
    """Train over `loader` once; returns the mean loss, accuracy (%), the last learning rate and the
    seconds spent. `mean`/`std` normalise uint8 batches. Raises NonFiniteLoss, naming the epoch and
    step, if a loss was NaN or infinite.

    `compiled_step`, a make_loss_step over the compiled model, runs every full batch; a partial last
    batch runs the same model uncompiled, so a compiled graph only ever sees one shape.
    """
    model.train()
    eager_step = make_loss_step(model, device, precision, label_smoothing)
    totals = _Totals(device)
    optimizer.zero_grad(set_to_none=True)
    lr = optimizer.param_groups[0]["lr"]
    start = time.perf_counter()
    bar = tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    steps = len(loader)
    for step, (images, labels) in enumerate(bar):
        images = normalize_batch(images, device, mean, std)
        labels = labels.to(device, non_blocking=True)
        update = (step + 1) % grad_accum == 0 or step + 1 == steps
        # The last group of an epoch may hold fewer micro-batches: divide by those really summed,
        # so that its update is as large as a full group's.
        group_start = step - step % grad_accum
        group_size = min(grad_accum, steps - group_start)
        # Under DDP, gradients are all-reduced only on the micro-step that updates the weights.
        sync = contextlib.nullcontext() if update or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            full = compiled_step is not None and len(labels) == loader.batch_size
            loss, logits = (compiled_step if full else eager_step)(images, labels)
            (loss / group_size).backward()
        if update:
            if clip_grad > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            totals.add(step, loss * len(labels), logits, labels)
        if progress and step % PROGRESS_EVERY == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.2e}")
    loss_sum, correct, seen = totals.read(epoch)
    return {"train_loss": loss_sum / seen, "train_acc": 100.0 * correct / seen, "lr": lr,
            "train_seconds": time.perf_counter() - start}


@torch.no_grad()
def evaluate(model, loader, device, precision="bf16", progress=True, mean=MEAN, std=STD) -> dict:
    """Loss and accuracy (%) over every item of `loader`'s data set, summed over all processes."""
    model.eval()
    totals = _Totals(device)
    for step, (images, labels) in enumerate(tqdm(loader, desc="val", disable=not progress, leave=False,
                                                 dynamic_ncols=True)):
        images = normalize_batch(images, device, mean, std)
        labels = labels.to(device, non_blocking=True)
        with autocast(device, precision):
            logits = model(images)
        totals.add(step, F.cross_entropy(logits.float(), labels, reduction="sum"), logits, labels)
    loss_sum, correct, seen = totals.read()
    return {"val_loss": loss_sum / seen, "val_acc": 100.0 * correct / seen, "val_seen": int(seen)}
