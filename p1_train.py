"""Fine-tune a pretrained ViT from `pytorch-pretrained-vit` on a `{label}_{id}.jpg` image folder.

    python p1_train.py --data_dir p1_data --output_dir runs/l16_sgd        # the default recipe
    torchrun --nproc_per_node 4 p1_train.py --data_dir p1_data --output_dir runs/l16_ddp

Writes RUN/config.json, RUN/metrics.csv (one row per epoch), RUN/best.pt (the weights, on each
improvement of the validation accuracy), RUN/last.pt (weights and optimizer state, every epoch;
`--resume` continues from it) and, with --save_every N, RUN/epoch_NNN.pt every N epochs; RUN/train.lock
keeps a second training out of RUN while this one runs.

    python p1_train.py --output_dir runs/l16_sgd --resume                  # after a crash or Ctrl-C
    python p1_train.py --output_dir runs/l16_sgd --resume --epochs 20      # train a finished run on

A resumed run takes every setting from RUN/config.json. It accepts again only the flags that do not
change what the model learns (--num_workers, --cache_images, --device, --no_progress, --compile,
--attention, --grad_checkpointing, --save_every, and --data_dir when the data has moved), a larger
--epochs and a new --patience; the flags, config.json and last.pt's config obey the same rules.
"""
import argparse
from pathlib import Path

from data.entry import run_main
from data.io import some_names, warn
import torch

from data.datasets import ImageFolder, SeededSampler
from data.pets import NUM_CLASSES, read_class_names
from data.transforms import AUGMENTATIONS, eval_transform, normalization, train_transform
from models.attention import ATTENTION_MODES, enable_grad_checkpointing, set_attention
from models.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, model_config
from models.settings import VIT_RUN_REQUIRED, check_vit_run
from models.training.distributed import main_process_first
from models.training.engine import classification_step, make_loss_step
from models.training.loop import Task, fit
from models.training.optim import OPTIMIZERS
from models.training.runtime import compile_blocks, cpu_share
from models.training.session import add_loop_flags, add_runtime_flags, resolve_run_args, training_run
from models.vit import MODEL_NAMES, build_vit, load_state_strict, set_input_config

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
        warn(f"{len(missing)} of {num_classes} classes have no training image: "
             f"{some_names([f'{k} ({class_names[k]})' for k in missing], SHOWN_CLASSES)}; the model cannot learn them")


def make_config(args) -> dict:
    return {**vars(args), **model_config(args.model, args.image_size, args.num_classes,
                                         read_class_names(args.data_dir, args.num_classes))}


def main(argv=None):
    args = resolve_args(argv)
    with training_run(args, load_checkpoint) as run:
        fit(args, make_task(args, run), run)


def make_task(args, run) -> Task:
    """The ViT, its image folders and its classification steps, for models.training.loop.fit."""
    config = dict(vars(args))
    # uint8 images, normalised on the device; checked before the model exists, on this process's idle CPUs
    transforms = {"train": train_transform(args.image_size, augment=args.augment, to_float=False),
                  "val": eval_transform(args.image_size, to_float=False)}
    train_set, val_set = (ImageFolder(Path(args.data_dir) / split, transform, num_classes=args.num_classes,
                                      skip_bad_images=args.skip_bad_images, progress=run.progress,
                                      cache_images=args.cache_images, check_threads=cpu_share())
                          for split, transform in transforms.items())
    if run.is_main:
        warn_classes_without_images(train_set.labels, config["class_names"], args.num_classes)
    torch.manual_seed(args.seed)
    fresh = run.resumed is None  # a resumed run takes its weights from last.pt, not from the pretrained ones
    with main_process_first():
        model = build_vit(args.model, num_classes=args.num_classes, image_size=args.image_size,
                          pretrained=fresh and not args.no_pretrained, weights=args.weights if fresh else None)
    if not fresh:
        load_state_strict(model, run.resumed["model"], str(run.out / "last.pt"), args.model)
    set_input_config(model, *normalization(config))  # applied on the device to the workers' uint8 images
    set_attention(model, args.attention)
    if args.grad_checkpointing:
        enable_grad_checkpointing(model)
    model.to(run.device)
    if args.compile:
        compile_blocks(model)

    def train_step(trained, amp):
        compiled = make_loss_step(trained, run.device, amp, args.label_smoothing) if args.compile else None
        return classification_step(trained, run.device, amp, args.label_smoothing, compiled, args.batch_size)

    def epoch_line(row, improved, train_seconds):
        return (f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.2f}% | "
                f"val loss {row['val_loss']:.4f} acc {row['val_acc']:.2f}% ({row['val_seen']} images)"
                f"{' *' if improved else ''} | {row['seconds']:.0f}s, "
                f"{len(train_set) / train_seconds:.1f} train images/s")

    return Task(model, train_set, val_set, config, CHECKPOINT_FORMAT, train_step,
                val_step=lambda plain, amp: classification_step(plain, run.device, amp),
                score=lambda row: row["val_acc"], criterion="val acc", shown=lambda acc: f"{acc:.2f}%",
                name=f"{args.model} at {args.image_size}px",
                describe=f"{len(train_set)} train, {len(val_set)} val images",
                epoch_line=epoch_line, best_key="best_acc", optimizer=args.optimizer, momentum=args.momentum,
                sampler=SeededSampler)  # crops seeded by (seed, epoch, index): a resume draws the same


if __name__ == "__main__":
    run_main(main)
