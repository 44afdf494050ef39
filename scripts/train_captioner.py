"""Train or fine-tune the CATR captioner on COCO-format captions.

    python scripts/train_captioner.py --data_dir coco --train_split train2017 --val_split val2017 \
        --output_dir runs/catr_v2_ft                                  # fine-tune the published v2
    python scripts/train_captioner.py --data_dir shapes --config tiny --no_pretrained --freeze_backbone \
        --cache_features --lr 3e-3 --output_dir runs/tiny             # a small captioner from scratch
    torchrun --nproc_per_node 4 scripts/train_captioner.py --data_dir coco ...

A split S is DATA_DIR/annotations/captions_S.json (or DATA_DIR/captions_S.json) and the image folder
DATA_DIR/S/. Teacher forcing: cross-entropy on each next caption token, [PAD] ignored; AdamW with the
reference's lower backbone learning rate (its stem and layer1 stay frozen, as in CATR), or
--freeze_backbone; linear warm-up then cosine decay; bf16 autocast on CUDA. Images are resized to
a longer side of --image_size, as CATR's inference does, and not flipped ("left of" would be wrong).
With --no_pretrained, the ResNet's frozen batch-norm statistics are set from the first 64 training
images (random weights would otherwise leave its features unscaled).

Writes RUN/config.json (the settings, the CATR configuration), RUN/metrics.csv (per epoch: train and
val loss and next-token accuracy, val BLEU-4 and CIDEr-D of greedy captions), RUN/best.pt (each better
val CIDEr-D, or val loss with --score_images 0), RUN/last.pt (with the optimizer state) and, with
--save_every N, RUN/epoch_NNN.pt: all load in the problem-2 scripts with --weights. RUN/train.lock
keeps a second training out. --resume goes on from last.pt with config.json's settings, accepting
again only the flags that do not change what the model learns (--data_dir, --num_workers, --device,
--no_progress, --save_every), a larger --epochs and a new --patience.
"""
import argparse
from dataclasses import replace

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main
from data.io import UserError
import torch

from catr.caption_data import CaptionPairs, collate_captions, read_caption_split
from catr.captioner import CONFIGS, build_model, close_vocabulary, config_name, open_output_ids
from catr.checkpoint import CAPTION_FORMAT, config_from_record, config_record
from catr.decode import MAX_STEPS
from catr.tokenizer import load_tokenizer
from catr.features import BackboneFeatures
from catr.training import (calibrate_random_backbone, caption_step, caption_vocabulary, check_open_targets,
                           parameter_groups, set_trainable)
from catr.training_settings import check_run
from catr.validation import validation_scores
from catr.weights import DEFAULT_VERSION, WEIGHT_URLS, load_model
from data.checkpoints import load_checkpoint_file
from data.coco_captions import split_paths
from data.weights import check_state_dict
from models.training.distributed import main_process_first
from models.training.loop import Task, fit
from models.training.session import add_loop_flags, add_runtime_flags, resolve_run_args, training_run

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
    with training_run(args, load_run_checkpoint) as run:
        fit(args, make_task(args, run), run)


def load_run_checkpoint(path) -> dict:
    return load_checkpoint_file(path, CAPTION_FORMAT, "scripts/train_captioner.py")


def make_task(args, run) -> Task:
    """The captioner, its caption pairs (or their cached features) and its teacher-forced steps, for
    models.training.loop.fit."""
    torch.manual_seed(args.seed)
    if run.resumed is None:
        model = initial_model(args)
    else:
        model = build_model(config_from_record(args.catr))  # config.json's, checked with the settings
        check_state_dict(model.state_dict(), run.resumed["model"], run.out / "last.pt",
                         f"{run.out / 'last.pt'} does not match the CATR configuration of {run.out / 'config.json'}")
        model.load_state_dict(run.resumed["model"])
    # A captioner checkpoint brings its own architecture: the run names and records that one.
    architecture = config_name(model.config) or args.config
    config = {**vars(args), "config": architecture, "catr": config_record(model.config)}
    set_trainable(model, args.freeze_backbone)
    model.to(run.device)

    encode = load_tokenizer().encode
    splits = [read_caption_split(*split_paths(args.data_dir, "captions", name), encode, MAX_STEPS)
              for name in (args.train_split, args.val_split)]
    train_pairs, val_pairs = (CaptionPairs(split, model.image_size) for split in splits)
    if run.resumed is None and args.no_pretrained:
        calibrate_random_backbone(model, train_pairs, run.device)
    if run.resumed is None and args.closed_vocabulary:
        close_vocabulary(model, caption_vocabulary(train_pairs))
    output_ids = open_output_ids(model)
    if output_ids is not None:
        check_open_targets(train_pairs, output_ids)
    train_set, val_set = (BackboneFeatures(pairs, model, run.device, progress=run.progress) if args.cache_features
                          else pairs for pairs in (train_pairs, val_pairs))

    scored = args.score_images != 0
    score_count = len(val_pairs.split.image_ids) if args.score_images is None else args.score_images

    def extra_metrics(plain_model):
        return validation_scores(plain_model, val_pairs, score_count, run.rank, run.world_size, run.device,
                                 max_steps=args.max_steps, progress=run.progress)[0]

    def epoch_line(row, improved, train_seconds):
        scores = f" | val BLEU-4 {row['val_bleu4']:.4f} CIDEr-D {row['val_cider']:.4f}" if scored else ""
        return (f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} | val loss {row['val_loss']:.4f} "
                f"next-token acc {row['val_acc']:.2f}%{scores}{' *' if improved else ''} | {row['seconds']:.0f}s")

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Task(
        model, train_set, val_set, config, CAPTION_FORMAT,
        train_step=lambda trained, amp: caption_step(trained, run.device, amp, from_features=args.cache_features,
                                                     output_ids=output_ids),
        # Val loss over the whole head: a val word the training captions lack counts in full.
        val_step=lambda plain, amp: caption_step(plain, run.device, amp, from_features=args.cache_features),
        score=(lambda row: row["val_cider"]) if scored else (lambda row: -row["val_loss"]),
        criterion="val CIDEr-D" if scored else "val loss",
        shown=(lambda score: f"{score:.4f}") if scored else (lambda score: f"{-score:.4f}"),
        name=f"CATR {architecture} at {model.image_size}px",
        describe=(f"{len(train_pairs.split.image_ids)} train images ({len(train_pairs)} captions), "
                  f"{len(val_pairs.split.image_ids)} val images, {trainable / 1e6:.2f}M trained parameters"),
        epoch_line=epoch_line, columns=COLUMNS, collate_fn=collate_captions,
        extra_metrics=extra_metrics if scored else lambda plain_model: {"val_bleu4": None, "val_cider": None},
        param_groups=parameter_groups(model, args.lr, args.lr_backbone))


if __name__ == "__main__":
    run_main(main)
