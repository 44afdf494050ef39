"""One epoch of training and one pass of evaluation, the same in one process and under torchrun.

Nothing here waits for the device inside the loop: losses and correct counts are summed on the
device and read once per pass (and by the progress bar every `PROGRESS_EVERY` steps), images are
counted on the host, and a non-finite loss is noted on the device as the first step it happened at,
checked whenever the totals are read. A uint8 batch is converted and normalised on the device.

The loop is the same for any model: a `batch_step` turns one batch from the loader into (mean loss,
correct predictions, items the loss averages over), as `classification_step` does for images and
labels (items: images) and the captioner's step for captions (items: caption tokens).
"""
import contextlib
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from data.io import UserError
from .distributed import all_reduce_sum
from .forward import batch_logits
from .runtime import uncompiled

PROGRESS_EVERY = 50  # steps between progress-bar updates, each of which waits for the device


class NonFiniteLoss(UserError):
    """The training loss became NaN or infinite; the run stops before anything is saved."""


def make_loss_step(model, device, amp, label_smoothing=0.0):
    """forward + loss as one function of (images, labels on `device`) -> (loss, logits), under `amp`,
    the run's autocast context; uint8 images are normalised first by the model's input contract."""
    def loss_step(images, labels):
        logits = batch_logits(model, images, device, amp)
        return F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing), logits
    return loss_step


def classification_step(model, device, amp, label_smoothing=0.0, compiled_step=None, full_batch=None):
    """The batch step for (images, labels) batches: (mean loss, correct predictions, images).

    `compiled_step`, a make_loss_step over the same model with compiled blocks
    (models.training.runtime.compile_blocks), runs batches of `full_batch` images; any other batch
    (a partial last one), and every batch of a step without a `compiled_step` (evaluation), runs
    with the compiled code set aside (`uncompiled`), so a compiled graph only ever sees one shape.
    """
    eager_step = make_loss_step(model, device, amp, label_smoothing)

    def step(batch):
        images, labels = batch
        labels = labels.to(device, non_blocking=True)
        full = compiled_step is not None and len(labels) == full_batch
        with contextlib.nullcontext() if full else uncompiled():
            loss, logits = (compiled_step if full else eager_step)(images, labels)
        return loss, (logits.detach().argmax(1) == labels).sum(), len(labels)
    return step


@dataclass(frozen=True)
class Updates:
    """How gradients become weight updates: one optimizer step every `grad_accum` micro-batches, the
    gradient norm clipped to `clip_grad` first (0: never)."""
    grad_accum: int = 1
    clip_grad: float = 0.0


@dataclass(frozen=True)
class LossStop:
    """How a trainer stops on a NaN or infinite training loss: the epoch it is in (None for a trainer
    that counts steps only) and what may help, flags the trainer takes (the epoch loop's by default)."""
    epoch: int | None = None
    remedies: tuple = ("a lower --lr", "--clip_grad", "--precision fp32")

    def error(self, step: int | None) -> NonFiniteLoss:
        """The stop at 0-based `step` (None: a step of another process)."""
        where = [f"epoch {self.epoch}"] if self.epoch is not None else []
        where.append(f"step {step + 1}" if step is not None else "in another process")
        *first, last = self.remedies
        advice = f"{', '.join(first)} or {last}" if first else last
        return NonFiniteLoss(f"the training loss became NaN or infinite at {', '.join(where)}; stopped without "
                             f"saving {'this epoch' if self.epoch is not None else 'anything'} (try {advice})")


class _Totals:
    """Loss sum and correct count on the device, the item count on the host, and the first step
    (0-based, -1 for none) whose loss was not finite."""

    def __init__(self, device):
        self.sums = torch.zeros(2, dtype=torch.float64, device=device)
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)
        self.seen = 0

    def add(self, step, loss, correct, items: int):
        """`loss`: the mean over the batch's `items`."""
        loss_sum = loss.detach().double() * items
        self.sums += torch.stack([loss_sum, torch.as_tensor(correct, device=self.sums.device).double()])
        bad = ~torch.isfinite(loss_sum)
        self.first_bad = torch.where(bad & (self.first_bad < 0), step, self.first_bad)
        self.seen += items

    def read(self, stop: LossStop | None = None) -> tuple:
        """(loss sum, correct, seen) over all processes; with `stop`, its NonFiniteLoss is raised when a
        process saw a non-finite loss."""
        loss_sum, correct, bad = torch.cat([self.sums, self.first_bad.double()[None]]).tolist()  # one read
        bad = int(bad)
        loss_sum, correct, seen, bad_ranks = all_reduce_sum([loss_sum, correct, self.seen, bad >= 0], self.sums.device)
        if bad_ranks and stop is not None:
            raise stop.error(bad if bad >= 0 else None)
        return loss_sum, correct, seen


def train_one_epoch(model, loader, optimizer, scheduler, batch_step, updates=Updates(), epoch=1,
                    progress=None) -> dict:
    """Train over `loader` once with `batch_step` (see the module's docstring); returns the mean loss,
    accuracy (%), the last learning rate and the seconds spent. Raises NonFiniteLoss, naming the
    `epoch` and step, if a loss was NaN or infinite. `progress`: the progress bar's label, None for
    no bar.
    """
    model.train()
    device = next(model.parameters()).device
    grad_accum = updates.grad_accum
    totals = _Totals(device)
    optimizer.zero_grad(set_to_none=True)
    lr = optimizer.param_groups[0]["lr"]
    start = time.perf_counter()
    bar = tqdm(loader, desc=progress, disable=progress is None, leave=False, dynamic_ncols=True)
    steps = len(loader)
    for step, batch in enumerate(bar):
        update = (step + 1) % grad_accum == 0 or step + 1 == steps
        # The last group of an epoch may hold fewer micro-batches: divide by those really summed,
        # so that its update is as large as a full group's.
        group_start = step - step % grad_accum
        group_size = min(grad_accum, steps - group_start)
        # Under DDP, gradients are all-reduced only on the micro-step that updates the weights.
        sync = contextlib.nullcontext() if update or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            loss, correct, items = batch_step(batch)
            (loss / group_size).backward()
        if update:
            if updates.clip_grad > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), updates.clip_grad)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            totals.add(step, loss, correct, items)
        if progress is not None and step % PROGRESS_EVERY == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.2e}")
    loss_sum, correct, seen = totals.read(LossStop(epoch))
    return {"train_loss": loss_sum / seen, "train_acc": 100.0 * correct / seen, "lr": lr,
            "train_seconds": time.perf_counter() - start}


@torch.no_grad()
def evaluate(model, loader, batch_step, progress: bool = False) -> dict:
    """Loss and accuracy (%) over every item of `loader`'s data set with `batch_step` (as in
    `train_one_epoch`), summed over all processes; `val_seen` counts its items."""
    model.eval()
    totals = _Totals(next(model.parameters()).device)
    for step, batch in enumerate(tqdm(loader, desc="val", disable=not progress, leave=False, dynamic_ncols=True)):
        totals.add(step, *batch_step(batch))
    loss_sum, correct, seen = totals.read()
    return {"val_loss": loss_sum / seen, "val_acc": 100.0 * correct / seen, "val_seen": int(seen)}
