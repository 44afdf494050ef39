"""Fine-tune a pretrained ViT from `pytorch-pretrained-vit` on a `{label}_{id}.jpg` image folder.

    python p1_train.py --data_dir p1_data --output_dir runs/l16_sgd        # the default recipe
    torchrun --nproc_per_node 4 p1_train.py --data_dir p1_data --output_dir runs/l16_ddp

Writes RUN/config.json, RUN/metrics.csv (one row per epoch), RUN/best.pt (the weights, on each
improvement of the validation accuracy) and RUN/last.pt (weights and optimizer state, every epoch;
`--resume` continues from it). RUN/train.lock keeps a second training out of RUN while this one runs.

    python p1_train.py --output_dir runs/l16_sgd --resume                  # after a crash or Ctrl-C
    python p1_train.py --output_dir runs/l16_sgd --resume --epochs 20      # train a finished run on

A resumed run takes every setting from RUN/config.json. It accepts again only the flags that do not
change what the model learns (--num_workers, --cache_images, --device, --no_progress, --compile,
--attention, --grad_checkpointing, and --data_dir when the data has moved) and the two that say how
long it trains: a larger --epochs and a new --patience. Any other flag with a new value is refused.
The flags, RUN/config.json and RUN/last.pt's config obey the same rules (models/settings.py).
"""
import argparse
import math
import time
from pathlib import Path

from data.entry import run_main  # first: Ctrl-C during the slow imports below is one line
from data.io import warn
import torch

from data.datasets import ImageFolder, SeededSampler
from data.pets import NUM_CLASSES, read_class_names
from data.transforms import AUGMENTATIONS, eval_transform, normalization, train_transform
from models.attention import ATTENTION_MODES, enable_grad_checkpointing, set_attention
from models.checkpoint import host_copy, load_checkpoint, model_config
from models.settings import VIT_RUN_REQUIRED, check_vit_run
from models.training.distributed import (ShardSampler, backend_name, cleanup_distributed,
                                         is_distributed, main_process_first)
from models.training.engine import evaluate, make_loss_step, train_one_epoch
from models.training.optim import OPTIMIZERS, build_optimizer, build_scheduler
from models.training.predict import make_loader
from models.training.runtime import compile_blocks, cpu_share, resolve_device
from models.training.session import (add_loop_flags, add_runtime_flags, completion_message, resolve_run_args,
                                     restore_progress, run_session, start_training_process, stop_early,
                                     write_epoch_files, write_run_start)
from models.training.writer import BackgroundWriter
from models.vit import MODEL_NAMES, build_vit, load_state_strict

SHOWN_CLASSES = 5  # how many classes without training images a warning names


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--data_dir", default="p1_data", help="folder holding train/ and val/ (default: p1_data)")
    g.add_argument("--output_dir", required=True, help="run folder for config, metrics and checkpoints")
    g.add_argument("--num_classes", type=int, default=NUM_CLASSES, help="labels are 0..N-1 (default: 37)")
    g.add_argument("--skip_bad_images", action="store_true",
                   help="warn about corrupt or truncated images and leave them out instead of stopping")
    g.add_argument("--augment", choices=AUGMENTATIONS, default="basic",
                   help="basic: RandomResizedCrop + flip (default); light: crops keep at least half the "
                        "image; strong: basic + TrivialAugment and random erasing")
    g = p.add_argument_group("model")
    g.add_argument("--model", choices=MODEL_NAMES, default="L_16_imagenet1k",
                   help="package model name, or tiny/micro for CPU demos and tests (default: L_16_imagenet1k)")
    g.add_argument("--image_size", type=int, default=None,
                   help="input side in pixels, a multiple of the patch size (default: the model's native size, "
                        "384 for *_imagenet1k)")
    g.add_argument("--no_pretrained", action="store_true", help="start from random weights")
    g.add_argument("--weights", default=None,
                   help="local file of pretrained weights instead of downloading them from the package's URL")
    g.add_argument("--attention", choices=ATTENTION_MODES, default="fast",
                   help="fast: one q/k/v matmul and fused scaled_dot_product_attention; sdpa: the fused "
                        "kernel with the package's three q/k/v matmuls; explicit: the package's own (default: fast)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd", help="(default: sgd)")
    g.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (default: 1e-4)")
    g.add_argument("--weight_decay", type=float, default=3e-4, help="(default: 3e-4)")
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default: 0.9)")
    add_loop_flags(g, epochs=10, batch_size=16, items="images", schedule="constant", warmup_epochs=0.0)
    g.add_argument("--patience", type=int, default=2,
                   help="stop after this many epochs without a better val accuracy; 0 never stops early (default: 2)")
    g.add_argument("--label_smoothing", type=float, default=0.0, help="in [0, 1) (default: 0)")
    g.add_argument("--clip_grad", type=float, default=0.0, help="max gradient norm; 0 turns clipping off")
    g = p.add_argument_group("runtime")
    add_runtime_flags(g)
    g.add_argument("--cache_images", action="store_true",
                   help="decode the train and val images once into shared memory (about 3 GB for Pets); "
                        "workers then only crop and resize. Refused, with the size needed, if it does not fit")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile each transformer block once, its code shared by all blocks (slower "
                        "start, faster steps); the partial last batch and evaluation run uncompiled, so "
                        "nothing recompiles")
    g.add_argument("--grad_checkpointing", action="store_true",
                   help="recompute activations in the backward pass: larger batches on small GPUs")
    return p


def resolve_args(argv=None) -> argparse.Namespace:
    """The flags, checked, with the model's config; on --resume the run's own settings from its config.json."""
    return resolve_run_args(get_args_parser, argv, check_vit_run, make_config, required=VIT_RUN_REQUIRED)


def warn_classes_without_images(labels, class_names, num_classes: int) -> None:
    missing = sorted(set(range(num_classes)) - set(labels))
    if missing:
        named = ", ".join(f"{k} ({class_names[k]})" for k in missing[:SHOWN_CLASSES])
        more = f" and {len(missing) - SHOWN_CLASSES} more" if len(missing) > SHOWN_CLASSES else ""
        warn(f"{len(missing)} of {num_classes} classes have no training image: {named}{more}; "
             "the model cannot learn them")


def make_config(args) -> dict:
    return {**vars(args), **model_config(args.model, args.image_size, args.num_classes,
                                         read_class_names(args.data_dir, args.num_classes))}


def main(argv=None):
    args = resolve_args(argv)
    device = resolve_device(args.device)
    with run_session(args.output_dir, args.resume, load_checkpoint, vars(args)) as (resumed, writer):
        train(args, device, resumed, writer)


def train(args, device, resumed, writer: BackgroundWriter):
    """Train into args.output_dir, continuing from the `resumed` last.pt checkpoint when given;
    `writer` writes each epoch's files."""
    rank, world_size, device = start_training_process(args, device)
    is_main = rank == 0
    progress = args.progress and is_main
    out = Path(args.output_dir)
    config = dict(vars(args))

    data_dir = Path(args.data_dir)
    # Workers return uint8 images; the engine converts and normalises them on the device. The images
    # are checked before the model exists, so this process's share of the CPUs is idle for it.
    check_threads = cpu_share()
    train_set = ImageFolder(data_dir / "train", train_transform(args.image_size, augment=args.augment, to_float=False),
                            num_classes=args.num_classes, skip_bad_images=args.skip_bad_images, progress=progress,
                            cache_images=args.cache_images, check_threads=check_threads)
    val_set = ImageFolder(data_dir / "val", eval_transform(args.image_size, to_float=False),
                          num_classes=args.num_classes, skip_bad_images=args.skip_bad_images, progress=progress,
                          cache_images=args.cache_images, check_threads=check_threads)

    if is_main:
        warn_classes_without_images(train_set.labels, config["class_names"], args.num_classes)

    torch.manual_seed(args.seed)
    fresh = resumed is None  # a resumed run takes its weights from last.pt, not from the pretrained ones
    with main_process_first():
        model = build_vit(args.model, num_classes=args.num_classes, image_size=args.image_size,
                          pretrained=fresh and not args.no_pretrained, weights=args.weights if fresh else None)
    if not fresh:
        load_state_strict(model, resumed["model"], str(out / "last.pt"), args.model)
    set_attention(model, args.attention)
    if args.grad_checkpointing:
        enable_grad_checkpointing(model)
    model.to(device)
    if args.compile:
        compile_blocks(model)
    plain_model = model  # evaluation runs it directly: compiled blocks set aside, and no DDP hooks needed
    if is_distributed():  # under torchrun, also as its only process
        # Gradients live in DDP's communication buckets: no copy between the two per step.
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                                          gradient_as_bucket_view=True)
    mean, std = normalization(config)  # applied on the device to the workers' uint8 images
    compiled_step = None
    if args.compile:
        compiled_step = make_loss_step(model, device, args.precision, args.label_smoothing, mean, std)

    # Every crop is seeded by (seed, epoch, index): a resumed run draws the same crops as an
    # uninterrupted one, whatever the workers.
    train_sampler = SeededSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=args.seed)
    train_loader = make_loader(train_set, args.batch_size, args.num_workers, device, train_sampler)
    val_loader = make_loader(val_set, args.batch_size * 2, args.num_workers, device,
                             ShardSampler(len(val_set), rank, world_size))

    steps_per_epoch = math.ceil(len(train_loader) / args.grad_accum)
    optimizer = build_optimizer(model, args.optimizer, args.lr, args.weight_decay, args.momentum, device)
    scheduler = build_scheduler(optimizer, args.schedule, total_steps=steps_per_epoch * args.epochs,
                                warmup_steps=round(args.warmup_epochs * steps_per_epoch))
    history, best_acc, best_epoch, start_epoch = restore_progress(resumed, optimizer, scheduler, "best_acc", -1.0)
    if is_main:
        write_run_start(out, config, args.resume, history)
    complete = completion_message(start_epoch, best_epoch, args.epochs, args.patience, "val acc")
    if complete:
        if is_main:
            print(f"{out} is already complete ({start_epoch} epochs, best val acc {best_acc:.2f}%): {complete}")
        cleanup_distributed()
        return
    if is_main:
        print(f"{args.model} at {args.image_size}px on {device} x{world_size}{backend_name()}: "
              f"{len(train_set)} train, {len(val_set)} val images -> {out}")

    for epoch in range(start_epoch, args.epochs):
        start = time.time()
        torch.manual_seed(args.seed * 1000 + epoch * 10 + rank)  # this epoch's dropout
        train_sampler.set_epoch(epoch)
        row = {"epoch": epoch + 1}
        row.update(train_one_epoch(model, train_loader, optimizer, scheduler, device, args.precision,
                                   args.grad_accum, args.label_smoothing, args.clip_grad, progress,
                                   desc=f"epoch {epoch + 1}/{args.epochs}", epoch=epoch + 1,
                                   compiled_step=compiled_step, mean=mean, std=std))
        train_seconds = row.pop("train_seconds")
        row.update(evaluate(plain_model, val_loader, device, args.precision, progress, mean=mean, std=std))
        row["seconds"] = round(time.time() - start, 2)
        history.append(row)
        improved = row["val_acc"] > best_acc
        if improved:
            best_acc, best_epoch = row["val_acc"], epoch + 1
        stop = args.patience > 0 and epoch + 1 - best_epoch >= args.patience
        if is_main:
            state = dict(epoch=epoch + 1, best_acc=best_acc, best_epoch=best_epoch, history=list(history))
            writer.submit(write_epoch_files, out, host_copy(plain_model.state_dict()), config, state,
                          host_copy(optimizer.state_dict()), host_copy(scheduler.state_dict()), improved)
            print(f"epoch {epoch + 1}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.2f}% | "
                  f"val loss {row['val_loss']:.4f} acc {row['val_acc']:.2f}% ({row['val_seen']} images)"
                  f"{' *' if improved else ''} | {row['seconds']:.0f}s, "
                  f"{len(train_set) / train_seconds:.1f} train images/s", flush=True)
        if stop_early(stop, device, is_main, "val accuracy", args.patience):
            break
    if is_main:
        print(f"best val acc {best_acc:.2f}% at epoch {best_epoch}: {out / 'best.pt'}")
    cleanup_distributed()


if __name__ == "__main__":
    run_main(main)
