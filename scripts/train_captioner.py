"""Train or fine-tune the CATR captioner on COCO-format captions.

    python scripts/train_captioner.py --data_dir coco --train_split train2017 --val_split val2017 \
        --output_dir runs/catr_v2_ft                                  # fine-tune the published v2
    python scripts/train_captioner.py --data_dir shapes --config tiny --no_pretrained --freeze_backbone \
        --cache_features --lr 3e-3 --output_dir runs/tiny             # a small captioner from scratch
    torchrun --nproc_per_node 4 scripts/train_captioner.py --data_dir coco ...

A split S is DATA_DIR/annotations/captions_S.json (or DATA_DIR/captions_S.json) and the image folder
DATA_DIR/S/. Teacher forcing: cross-entropy on each next caption token, [PAD] ignored; AdamW with the
reference's lower backbone learning rate (its stem and layer1 stay frozen, as in CATR), or
--freeze_backbone; linear warm-up then cosine decay; bf16 autocast on CUDA. Images are resized so
that their longer side is --image_size, as CATR's inference resizes them, and not flipped (a flip
would make "left of" wrong). With --no_pretrained, the ResNet's frozen batch-norm statistics are set
from the first 64 training images (random weights would otherwise leave its features unscaled).

Writes RUN/config.json (the settings and the CATR configuration), RUN/metrics.csv (per epoch: train
and val loss and next-token accuracy, val BLEU-4 and CIDEr-D of greedy captions), RUN/best.pt (on
each better val CIDEr-D, or lower val loss with --score_images 0) and RUN/last.pt (with the optimizer
state, every epoch). The checkpoints load in p2_vis_caption.py and scripts/eval_captions.py with
--weights. RUN/train.lock keeps a second training out while this one runs; --resume continues from
last.pt with the settings of config.json, accepting again only the flags that do not change what the
model learns (--data_dir, --num_workers, --device, --no_progress), a larger --epochs and a new
--patience.
"""
import argparse
import math
import time
from dataclasses import replace
from pathlib import Path

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main  # first: Ctrl-C during the slow imports below is one line
from data.io import UserError
import torch
from torch.utils.data import DistributedSampler

from catr.caption_data import CaptionPairs, collate_captions, read_caption_split
from catr.captioner import CONFIGS, build_model, close_vocabulary, open_output_ids
from catr.checkpoint import CAPTION_FORMAT, config_from_record, config_record
from catr.decode import MAX_STEPS
from catr.tokenizer import load_tokenizer
from catr.training import (BackboneFeatures, calibrate_random_backbone, caption_step, caption_vocabulary,
                           check_open_targets, check_run, parameter_groups, set_trainable, validation_scores)
from catr.weights import DEFAULT_VERSION, WEIGHT_URLS, load_model
from models.checkpoint import host_copy, load_checkpoint_file
from models.weights import state_dict_mismatch
from models.training.distributed import (ShardSampler, backend_name, cleanup_distributed,
                                         is_distributed, main_process_first)
from models.training.engine import evaluate, train_one_epoch
from models.training.optim import build_optimizer, build_scheduler
from models.training.predict import make_loader
from models.training.runtime import resolve_device
from models.training.session import (add_loop_flags, add_runtime_flags, completion_message, resolve_run_args,
                                     restore_progress, run_session, start_training_process, stop_early,
                                     write_epoch_files, write_run_start)

COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_bleu4", "val_cider", "lr", "seconds")


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--data_dir", help="folder of the splits' annotations and image folders (required)")
    g.add_argument("--train_split", default="train", help="training split name (default: %(default)s)")
    g.add_argument("--val_split", default="val", help="validation split name (default: %(default)s)")
    g.add_argument("--output_dir", required=True, help="run folder for config, metrics and checkpoints")
    g = p.add_argument_group("model")
    start = g.add_mutually_exclusive_group()
    start.add_argument("--version", choices=sorted(WEIGHT_URLS), default=DEFAULT_VERSION,
                       help="published CATR weights to fine-tune, downloaded once (default: %(default)s)")
    start.add_argument("--weights", metavar="FILE",
                       help="start from this file instead: a checkpoint of this script (its own configuration) "
                            "or a dict with a state dict of --config under 'model'")
    start.add_argument("--no_pretrained", action="store_true", help="start from random weights of --config")
    g.add_argument("--config", choices=sorted(CONFIGS), default="catr",
                   help="architecture: catr (the published one), or a small one for CPU runs (default: %(default)s)")
    g.add_argument("--image_size", type=int, default=None,
                   help="longer side of the images in pixels (default: the configuration's, 299 for catr)")
    g.add_argument("--freeze_backbone", action="store_true", help="train everything but the ResNet")
    g.add_argument("--cache_features", action="store_true",
                   help="with --freeze_backbone: compute the ResNet's features of every image once and train "
                        "on them (refused if they need more than half the memory)")
    g.add_argument("--closed_vocabulary", action="store_true",
                   help="let the model generate only the word pieces of the training captions (the others' "
                        "output bias set to -1e4, their probability 0); training then skips the rest of the "
                        "30,522-word head, several times faster for a small caption set")
    g = p.add_argument_group("optimisation (defaults: the reference's, saahiluppal/catr configuration.py)")
    g.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (default: %(default)s)")
    g.add_argument("--lr_backbone", type=float, default=1e-5,
                   help="peak learning rate of the ResNet's layer2..layer4 (default: %(default)s)")
    g.add_argument("--weight_decay", type=float, default=1e-4, help="AdamW weight decay (default: %(default)s)")
    g.add_argument("--clip_grad", type=float, default=0.1, help="max gradient norm; 0 turns it off (default: %(default)s)")
    add_loop_flags(g, epochs=30, batch_size=32, items="captions", schedule="cosine", warmup_epochs=1.0)
    g.add_argument("--patience", type=int, default=0,
                   help="stop after this many epochs without a better val score; 0 never stops early (default: 0)")
    g = p.add_argument_group("validation")
    g.add_argument("--score_images", type=int, default=None,
                   help="caption this many val images (the first, by file order) each epoch and score them; 0 "
                        "scores none and keeps best.pt by val loss (default: all)")
    g.add_argument("--max_steps", type=int, default=32,
                   help=f"tokens at most in a val caption, 1..{MAX_STEPS} (default: %(default)s)")
    g = p.add_argument_group("runtime")
    add_runtime_flags(g)
    return p


def make_config(args) -> dict:
    return dict(vars(args))


def split_paths(data_dir: Path, split: str) -> tuple:
    """(annotations file, image folder) of a split, in COCO's layout or flat."""
    coco = data_dir / "annotations" / f"captions_{split}.json"
    return (coco if coco.is_file() else data_dir / f"captions_{split}.json"), data_dir / split


def initial_model(args):
    """The model to start from (on the CPU) and its CATR configuration, the image side applied."""
    if args.no_pretrained:
        model = build_model(CONFIGS[args.config])
    else:
        with main_process_first():  # one download per node
            model = load_model(args.version, args.weights, config=args.config)
    model.config = replace(model.config, image_size=args.image_size or model.config.image_size)
    return model


def main(argv=None):
    args = resolve_run_args(get_args_parser, argv, check_run, make_config, required=("catr",))
    device = resolve_device(args.device)
    with run_session(args.output_dir, args.resume, load_run_checkpoint, vars(args)) as (resumed, writer):
        train(args, device, resumed, writer)


def load_run_checkpoint(path) -> dict:
    return load_checkpoint_file(path, CAPTION_FORMAT, "scripts/train_captioner.py")


def train(args, device, resumed, writer):
    rank, world_size, device = start_training_process(args, device)
    is_main = rank == 0
    progress = args.progress and is_main
    out = Path(args.output_dir)

    torch.manual_seed(args.seed)
    if resumed is None:
        model = initial_model(args)
    else:
        model = build_model(config_from_record(args.catr))  # config.json's, checked with the settings
        problem = state_dict_mismatch(model.state_dict(), resumed["model"])
        if problem:
            raise UserError(f"{out / 'last.pt'} does not match the CATR configuration of {out / 'config.json'}: "
                            f"{problem}")
        model.load_state_dict(resumed["model"])
    config = {**vars(args), "catr": config_record(model.config)}
    set_trainable(model, args.freeze_backbone)
    model.to(device)

    encode = load_tokenizer().encode
    splits = [read_caption_split(*split_paths(Path(args.data_dir), name), encode, MAX_STEPS)
              for name in (args.train_split, args.val_split)]
    train_pairs, val_pairs = (CaptionPairs(split, model.image_size) for split in splits)
    if resumed is None and args.no_pretrained:
        calibrate_random_backbone(model, train_pairs, device)
    if resumed is None and args.closed_vocabulary:
        close_vocabulary(model, caption_vocabulary(train_pairs))
    output_ids = open_output_ids(model)
    if output_ids is not None:
        check_open_targets(train_pairs, output_ids)
    train_set, val_set = train_pairs, val_pairs
    if args.cache_features:
        model.eval()
        train_set, val_set = (BackboneFeatures(pairs, model, device, progress=progress) for pairs in (train_pairs, val_pairs))

    plain_model = model
    if is_distributed():
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    train_sampler = DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=args.seed)
    train_loader = make_loader(train_set, args.batch_size, args.num_workers, device, sampler=train_sampler,
                               collate_fn=collate_captions)
    val_loader = make_loader(val_set, args.batch_size * 2, args.num_workers, device,
                             sampler=ShardSampler(len(val_set), rank, world_size), collate_fn=collate_captions)
    steps_per_epoch = math.ceil(len(train_loader) / args.grad_accum)
    optimizer = build_optimizer(plain_model, "adamw", args.lr, args.weight_decay, 0.0, device,
                                param_groups=parameter_groups(plain_model, args.lr, args.lr_backbone))
    scheduler = build_scheduler(optimizer, args.schedule, total_steps=steps_per_epoch * args.epochs,
                                warmup_steps=round(args.warmup_epochs * steps_per_epoch))
    history, best_score, best_epoch, start_epoch = restore_progress(resumed, optimizer, scheduler, "best_score",
                                                                    -math.inf)
    if is_main:
        write_run_start(out, config, args.resume, history, COLUMNS)
    scored = args.score_images != 0
    criterion = "val CIDEr-D" if scored else "val loss"
    complete = completion_message(start_epoch, best_epoch, args.epochs, args.patience, criterion)
    if complete:
        if is_main:
            print(f"{out} is already complete ({start_epoch} epochs): {complete}")
        cleanup_distributed()
        return
    if is_main:
        trainable = sum(p.numel() for p in plain_model.parameters() if p.requires_grad)
        print(f"CATR {args.config} at {plain_model.image_size}px on {device} x{world_size}{backend_name()}: "
              f"{len(train_pairs.split.image_ids)} train images ({len(train_pairs)} captions), "
              f"{len(val_pairs.split.image_ids)} val images, {trainable / 1e6:.2f}M trained parameters -> {out}")

    # Val loss over the whole head: a val word the training captions lack counts in full.
    step = caption_step(model, device, args.precision, from_features=args.cache_features, output_ids=output_ids)
    val_step = caption_step(plain_model, device, args.precision, from_features=args.cache_features)
    score_count = len(val_pairs.split.image_ids) if args.score_images is None else args.score_images
    for epoch in range(start_epoch, args.epochs):
        start = time.time()
        torch.manual_seed(args.seed * 1000 + epoch * 10 + rank)  # this epoch's dropout
        train_sampler.set_epoch(epoch)
        row = {"epoch": epoch + 1}
        row.update(train_one_epoch(model, train_loader, optimizer, scheduler, device, args.precision, args.grad_accum,
                                   clip_grad=args.clip_grad, progress=progress, desc=f"epoch {epoch + 1}/{args.epochs}",
                                   epoch=epoch + 1, batch_step=step))
        row.pop("train_seconds")
        row.update(evaluate(plain_model, val_loader, device, args.precision, progress, batch_step=val_step))
        row.pop("val_seen")
        row.update(val_bleu4=None, val_cider=None)
        if scored:
            row.update(validation_scores(plain_model, val_pairs, score_count, rank, world_size, device,
                                         max_steps=args.max_steps, progress=progress)[0])
        row["seconds"] = round(time.time() - start, 2)
        history.append(row)
        score = row["val_cider"] if scored else -row["val_loss"]
        improved = score > best_score
        if improved:
            best_score, best_epoch = score, epoch + 1
        stop = args.patience > 0 and epoch + 1 - best_epoch >= args.patience
        if is_main:
            state = dict(epoch=epoch + 1, best_score=best_score, best_epoch=best_epoch, history=list(history))
            writer.submit(write_epoch_files, out, host_copy(plain_model.state_dict()), config, state,
                          host_copy(optimizer.state_dict()), host_copy(scheduler.state_dict()), improved,
                          format=CAPTION_FORMAT, columns=COLUMNS)
            scores = f" | val BLEU-4 {row['val_bleu4']:.4f} CIDEr-D {row['val_cider']:.4f}" if scored else ""
            print(f"epoch {epoch + 1}: train loss {row['train_loss']:.4f} | val loss {row['val_loss']:.4f} "
                  f"next-token acc {row['val_acc']:.2f}%{scores}{' *' if improved else ''} | {row['seconds']:.0f}s",
                  flush=True)
        if stop_early(stop, device, is_main, criterion, args.patience):
            break
    if is_main:
        print(f"best {criterion} at epoch {best_epoch}: {out / 'best.pt'}")
    cleanup_distributed()


if __name__ == "__main__":
    run_main(main)
