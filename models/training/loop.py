"""The one training loop of every trainer (p1_train.py, scripts/train_captioner.py): `fit(args, task, run)`.

The loop owns what every training does: DDP, samplers and loaders, steps per epoch, the optimizer
and its schedule, the state restored from last.pt, each epoch's seed, training and evaluation, the
best score and the early stop, the files each epoch writes and its line. A `Task` supplies what
differs between models: the model, its data, its batch steps, the score that picks best.pt, extra
metric columns and the checkpoint format. `args` holds the flags of `session.add_loop_flags` and
`session.add_runtime_flags`, `run` (session.training_run) this process's place in the run.

A run stops early when `patience` epochs in a row brought no better score (`patience_exhausted`);
a resumed run that already stopped, or trained every epoch, has nothing left to do.
"""
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DistributedSampler

from data.checkpoints import host_copy, write_checkpoint
from data.io import write_text_atomic
from data.resume import differing_settings
from data.run_files import METRIC_COLUMNS, epoch_file, metrics_csv, read_config
from .distributed import ShardSampler, backend_name, broadcast_flag, cleanup_distributed, is_distributed
from .engine import Updates, evaluate, train_one_epoch
from .loader import make_loader
from .optim import build_optimizer, build_scheduler
from .runtime import autocast


@dataclass
class Task:
    """What one kind of training gives the loop."""
    model: torch.nn.Module  # on the run's device; from last.pt on a resume; its trainable parameters marked
    train_set: torch.utils.data.Dataset
    val_set: torch.utils.data.Dataset
    config: dict  # config.json and every checkpoint's `config`
    format: str  # the checkpoint marker (data/checkpoints.py)
    train_step: Callable  # (model that trains: DDP-wrapped under torchrun, autocast context) -> batch step
    val_step: Callable  # (plain model, autocast context) -> batch step of evaluation
    score: Callable[[dict], float]  # an epoch's row -> what best.pt keeps the highest of
    criterion: str  # the score's name in messages: "val acc"
    shown: Callable[[float], str]  # a score as a message writes it
    name: str  # what trains, for the start-up line: "tiny at 64px"
    describe: str  # its data, for the same line
    epoch_line: Callable[[dict, bool, float], str]  # (row, improved, train seconds) -> the epoch's line
    best_key: str = "best_score"  # the checkpoint's name of the best score
    columns: tuple = METRIC_COLUMNS
    extra_metrics: Callable[[torch.nn.Module], dict] | None = None  # plain model -> more of the epoch's row
    sampler: type = DistributedSampler  # orders the training set, given (set, num_replicas, rank, shuffle, seed)
    collate_fn: Callable | None = None
    optimizer: str = "adamw"
    momentum: float = 0.0
    param_groups: list | None = field(default=None, repr=False)  # default: every trainable parameter at --lr


def fit(args, task: Task, run) -> None:
    """Train `task` for args.epochs (from where `run.resumed` stopped) into run.out."""
    device, out = run.device, run.out
    plain_model = task.model  # evaluation and checkpoints use it directly: no DDP hooks, compiled blocks set aside
    model = plain_model
    if is_distributed():  # under torchrun, also as its only process
        # Gradients live in DDP's communication buckets: no copy between the two per step.
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, gradient_as_bucket_view=True)
    train_sampler = task.sampler(task.train_set, num_replicas=run.world_size, rank=run.rank, shuffle=True,
                                 seed=args.seed)
    train_loader = make_loader(task.train_set, args.batch_size, args.num_workers, device, train_sampler,
                               task.collate_fn)
    val_loader = make_loader(task.val_set, args.batch_size * 2, args.num_workers, device,
                             ShardSampler(len(task.val_set), run.rank, run.world_size), task.collate_fn)
    steps_per_epoch = math.ceil(len(train_loader) / args.grad_accum)
    optimizer = build_optimizer(plain_model, task.optimizer, args.lr, args.weight_decay, task.momentum, device,
                                param_groups=task.param_groups)
    scheduler = build_scheduler(optimizer, args.schedule, total_steps=steps_per_epoch * args.epochs,
                                warmup_steps=round(args.warmup_epochs * steps_per_epoch))
    history, best, best_epoch, start_epoch = restore_progress(run.resumed, optimizer, scheduler, task.best_key)
    if run.is_main:
        write_run_start(out, task.config, args.resume, history, task.columns)
    complete = completion_message(start_epoch, best_epoch, args.epochs, args.patience, task.criterion)
    if complete:
        if run.is_main:
            print(f"{out} is already complete ({start_epoch} epochs, best {task.criterion} {task.shown(best)}): "
                  f"{complete}")
        cleanup_distributed()
        return
    if run.is_main:
        print(f"{task.name} on {device} x{run.world_size}{backend_name()}: {task.describe} -> {out}")

    amp = autocast(device, args.precision, training=True)  # the run's one precision, settled at start-up
    train_step, val_step = task.train_step(model, amp), task.val_step(plain_model, amp)
    updates = Updates(args.grad_accum, args.clip_grad)
    for epoch in range(start_epoch, args.epochs):
        start = time.time()
        torch.manual_seed(args.seed * 1000 + epoch * 10 + run.rank)  # this epoch's dropout
        train_sampler.set_epoch(epoch)
        row = {"epoch": epoch + 1}
        row.update(train_one_epoch(model, train_loader, optimizer, scheduler, train_step, updates, epoch + 1,
                                   f"epoch {epoch + 1}/{args.epochs}" if run.progress else None))
        train_seconds = row.pop("train_seconds")
        row.update(evaluate(plain_model, val_loader, val_step, run.progress))
        if task.extra_metrics is not None:
            row.update(task.extra_metrics(plain_model))
        row["seconds"] = round(time.time() - start, 2)
        history.append(row)
        improved = task.score(row) > best
        if improved:
            best, best_epoch = task.score(row), epoch + 1
        if run.is_main:
            state = {"epoch": epoch + 1, task.best_key: best, "best_epoch": best_epoch, "history": list(history)}
            kept = args.save_every > 0 and (epoch + 1) % args.save_every == 0
            run.writer.submit(write_epoch_files, out, host_copy(plain_model.state_dict()), task.config, state,
                              host_copy(optimizer.state_dict()), host_copy(scheduler.state_dict()), improved,
                              task.format, task.columns, kept)
            print(task.epoch_line(row, improved, train_seconds), flush=True)
        if stop_early(patience_exhausted(epoch + 1, best_epoch, args.patience), device, run.is_main,
                      task.criterion, args.patience):
            break
    if run.is_main:
        print(f"best {task.criterion} {task.shown(best)} at epoch {best_epoch}: {out / 'best.pt'}")
    cleanup_distributed()


def patience_exhausted(epochs_done: int, best_epoch: int, patience: int) -> bool:
    """The early-stop rule: `patience` (> 0) epochs since the best one; 0 never stops."""
    return patience > 0 and epochs_done - best_epoch >= patience


def restore_progress(resumed, optimizer, scheduler, best_key: str) -> tuple:
    """(history, best score, best_epoch, start_epoch): a new run's, or the `resumed` checkpoint's with
    the optimizer and schedule restored; `best_key` names the checkpoint's best score."""
    if resumed is None:
        return [], -math.inf, 0, 0
    optimizer.load_state_dict(resumed["optimizer"])
    scheduler.load_state_dict(resumed["scheduler"])
    return resumed["history"], resumed[best_key], resumed["best_epoch"], resumed["epoch"]


def write_run_start(out, config: dict, resume: bool, history: list, columns=METRIC_COLUMNS) -> None:
    """config.json (unless a resume changes nothing in it) and metrics.csv rebuilt from the kept rows:
    the rows live in last.pt, so a kill between its write and metrics.csv's loses no row."""
    out = Path(out)
    if not resume or differing_settings([config, read_config(out / "config.json")]):
        write_text_atomic(out / "config.json", json.dumps(config, indent=2) + "\n")
    write_text_atomic(out / "metrics.csv", metrics_csv(history, columns))


def write_epoch_files(out, weights, config, state, optimizer_state, scheduler_state, improved, format: str,
                      columns=METRIC_COLUMNS, kept: bool = False) -> None:
    """best.pt (on an improvement), epoch_NNN.pt (when `kept`), last.pt, then metrics.csv, each
    atomic; run in the background. `state` holds the epoch, the best score so far and the `history`
    of metric rows. best.pt and epoch_NNN.pt are for inference and pictures: without the optimizer's
    state, which would double them."""
    out = Path(out)
    if improved:
        write_checkpoint(out / "best.pt", format, weights, config, **state)
    if kept:
        write_checkpoint(out / epoch_file(state["epoch"]), format, weights, config, **state)
    write_checkpoint(out / "last.pt", format, weights, config, **state, optimizer=optimizer_state,
                     scheduler=scheduler_state)
    # The rows live in last.pt too: a kill between its write and metrics.csv's loses no row.
    write_text_atomic(out / "metrics.csv", metrics_csv(state["history"], columns))


def completion_message(start_epoch: int, best_epoch: int, epochs: int, patience: int, criterion: str):
    """Why a run has nothing left to train (its epochs done, or stopped early), or None."""
    if start_epoch > 0 and patience_exhausted(start_epoch, best_epoch, patience):
        return (f"it stopped early, no better {criterion} for {patience} epochs; to train on, pass a larger "
                "--patience (0: never stop early)")
    if start_epoch >= epochs:
        return f"to train on, pass --epochs larger than {start_epoch}"
    return None


def stop_early(stop: bool, device, is_main: bool, criterion: str, patience: int) -> bool:
    """Whether every process stops now, as the main process decided; it says why."""
    if not broadcast_flag(stop, device):
        return False
    if is_main:
        print(f"early stop: no better {criterion} for {patience} epochs")
    return True
