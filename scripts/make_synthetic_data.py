"""Write a synthetic 37-class image set in the Pets naming (`DIR/train`, `DIR/val`, `{label}_{id}.png`).

A folder whose train/ or val/ already holds images is refused rather than mixed with new ones.
With --pets_sized, write 500 x 375 JPEGs of colour noise instead (`{id % 37}_{id}.jpg`, nothing to
learn): for timing training with real loading costs, e.g. 3,680 + 1,500 files like the Pets split.
"""
import argparse
from pathlib import Path

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main  # first: Ctrl-C during the slow imports below is one line
from data.io import UserError
from data.synthetic import make_synthetic_split, write_pets_sized_jpegs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="folder to create; train/ and val/ go inside")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same images (default 0)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels, at least 8 (default 64)")
    parser.add_argument("--train_per_class", type=int, default=40, help="training images per class (default 40)")
    parser.add_argument("--val_per_class", type=int, default=10, help="validation images per class (default 10)")
    parser.add_argument("--masks", action="store_true",
                        help="also write each validation image's shape as a mask, DIR/val_masks/<stem>.png "
                             "(255 on the object), for scripts/eval_explanations.py --masks_dir")
    parser.add_argument("--pets_sized", nargs=2, type=int, metavar=("TRAIN", "VAL"), default=None,
                        help="write TRAIN and VAL Pets-sized JPEGs instead of the drawn classes (--size, "
                             "--seed, --masks and the per-class counts are then not used)")
    args = parser.parse_args(argv)
    if args.pets_sized:
        train, val = args.pets_sized
        if train < 1 or val < 1:
            raise UserError("--pets_sized needs at least 1 training and 1 validation image")
        write_pets_sized_jpegs(Path(args.out) / "train", train, labeled=True)
        write_pets_sized_jpegs(Path(args.out) / "val", val, first_id=train, labeled=True)
        print(f"wrote {train} training and {val} validation Pets-sized JPEGs to {args.out}")
        return
    if args.train_per_class < 1 or args.val_per_class < 1:
        raise UserError("--train_per_class and --val_per_class must be at least 1")
    out = make_synthetic_split(args.out, args.seed, args.size, args.train_per_class, args.val_per_class,
                               masks=args.masks)
    print(f"wrote {37 * args.train_per_class} training and {37 * args.val_per_class} validation images to {out}")


if __name__ == "__main__":
    run_main(main)
