"""Train a captioner's ResNet alone on an instances file's labels, before train_captioner.py trains the rest.

The backbone of a random CATR configuration learns to tell which labels each training image has:
its COCO categories and, where the annotations carry one, the synthetic set's `colour`. A linear
head reads the maximum of each feature channel over the grid; binary cross-entropy per label, AdamW,
warm-up then cosine. layer1..layer4 train; the stem (conv1 and the max pool) stays as initialised, so
its output is computed once; every batch norm is set from the first 64 images, then frozen. The
result is a captioner checkpoint whose backbone is trained and whose transformer is still random, for
`train_captioner.py --weights FILE --freeze_backbone --cache_features`: a frozen random ResNet reports
colour far better than shape, and this one reports both (docs/captioning.md).

Splits are read as train_captioner.py reads them, instances_S.json for captions_S.json:
DATA_DIR/annotations/instances_S.json (or DATA_DIR/instances_S.json) and the images in DATA_DIR/S/.

    python scripts/make_synthetic_data.py --captions --out shapes --size 96 --max_shapes 1 --train_scenes 3000
    python scripts/pretrain_backbone.py --data_dir shapes --config tiny_narrow --image_size 96 --out backbone.pt
    python scripts/train_captioner.py --data_dir shapes --config tiny_narrow --weights backbone.pt \\
        --image_size 96 --freeze_backbone --cache_features --closed_vocabulary --lr 5e-3 --output_dir runs/tiny

It prints the mean loss of the last tenth of the steps and the fraction of val images whose labels it
gets exactly right, and records both in the checkpoint's config. A run takes minutes on a CPU and does
not resume: an interrupted one writes nothing, and --out is written once, atomically, at the end, never
over a file: a second run onto the same --out is refused while one runs, and a file made meanwhile is
kept. A NaN or infinite loss stops it, as it stops the other trainers.
"""
import argparse
import time
from dataclasses import replace
from pathlib import Path

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main
from data.io import UserError, atomic_path
import torch

from catr.backbone_training import PRETRAIN_RULES, LabelledImages, calibrate_on, exact_label_accuracy, train_backbone
from catr.captioner import CONFIGS, build_model
from catr.checkpoint import CAPTION_FORMAT, config_record
from data.checkpoints import write_checkpoint
from data.coco_captions import split_paths
from data.outputs import check_output_file
from data.resumable import held
from models.training.flags import add_batch_size_flag, add_device_flag, add_num_workers_flag
from models.training.runtime import PRECISIONS, resolve_device
from models.training.settings import check_settings


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", required=True, help="folder of the splits' annotations and image folders")
    p.add_argument("--train_split", default="train", help="training split name (default: %(default)s)")
    p.add_argument("--val_split", default="val", help="split scored at the end (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="FILE", help="the captioner checkpoint to write (a new file)")
    p.add_argument("--config", choices=sorted(CONFIGS), default="tiny_narrow",
                   help="the CATR configuration whose backbone trains (default: %(default)s)")
    p.add_argument("--image_size", type=int, default=None,
                   help="side of the square images in pixels, and the captioner's longer side later "
                        "(default: the configuration's)")
    p.add_argument("--steps", type=int, default=1200, help="training steps (default: %(default)s)")
    add_batch_size_flag(p, 32, "images per step")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default: %(default)s)")
    p.add_argument("--weight_decay", type=float, default=0.01, help="AdamW weight decay (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same weights (default: 0)")
    add_device_flag(p)
    p.add_argument("--precision", choices=PRECISIONS, default="bf16",
                   help="bf16 autocast on CUDA (default); the CPU always runs fp32")
    add_num_workers_flag(p, default=0)
    p.add_argument("--no_progress", dest="progress", action="store_false", help="no progress bar")
    return p


def check_args(args) -> None:
    check_settings(vars(args), PRETRAIN_RULES)
    inputs = [split_paths(args.data_dir, "instances", split)[0] for split in (args.train_split, args.val_split)]
    check_output_file(args.out, "--out", inputs=inputs)
    if Path(args.out).exists():
        raise UserError(f"--out {args.out} exists; remove it or name a new file")
    for split, instances in zip((args.train_split, args.val_split), inputs):
        if not instances.is_file():
            raise UserError(f"no instances file for the split {split!r}: neither "
                            f"{Path(args.data_dir) / 'annotations' / instances.name} nor {instances}")


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    check_args(args)
    with held(args.out, "pretrain_backbone.py", "--out"):  # a second run onto the same --out waits for none
        train(args)


def train(args) -> None:
    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    config = CONFIGS[args.config]
    config = replace(config, image_size=args.image_size or config.image_size)
    model = build_model(config)
    backbone = model.backbone[0].to(device)
    train_set = LabelledImages(*split_paths(args.data_dir, "instances", args.train_split), config.image_size)
    val_set = LabelledImages(*split_paths(args.data_dir, "instances", args.val_split), config.image_size,
                             label_names=train_set.label_names)
    print(f"backbone of CATR {args.config} at {config.image_size}px on {device}: {len(train_set)} train images, "
          f"{len(train_set.label_names)} labels ({', '.join(train_set.label_names[:8])}"
          f"{', ...' if len(train_set.label_names) > 8 else ''}) -> {args.out}")
    start = time.time()
    calibrate_on(backbone, train_set, device)
    head, train_loss = train_backbone(backbone, train_set, args.steps, args.batch_size, args.lr, args.weight_decay,
                                      device, args.precision, args.num_workers, args.seed, args.progress)
    val_exact = exact_label_accuracy(backbone, head, val_set, device, args.precision)
    seconds = time.time() - start
    record = {**{key: value for key, value in vars(args).items() if key != "progress"},
              "labels": train_set.label_names, "train_loss": train_loss, "val_exact": val_exact,
              "seconds": round(seconds, 1)}
    with atomic_path(args.out, replace=False) as tmp:  # a file made meanwhile under that name is kept
        write_checkpoint(tmp, CAPTION_FORMAT, model, {"catr": config_record(model.config), "pretrain_backbone": record})
    print(f"{args.steps} steps in {seconds:.0f}s: train loss {train_loss:.4f} | val: every label right in "
          f"{val_exact:.1%} of {len(val_set)} images -> {args.out}")


if __name__ == "__main__":
    run_main(main)
