"""Write a synthetic 37-class image set in the Pets naming (`DIR/train`, `DIR/val`, `{label}_{id}.png`).

A folder whose train/ or val/ already holds images is refused rather than mixed with new ones.
With --pets_sized, write 500 x 375 JPEGs of colour noise instead (`{id % 37}_{id}.jpg`, nothing to
learn): for timing training with real loading costs, e.g. 3,680 + 1,500 files like the Pets split.
With --captions, write a captioned set in COCO's format instead (scenes of 1-3 coloured shapes, their
captions and polygons: see data/synthetic_captions.py), for training and grading a captioner.
"""
import argparse
from pathlib import Path

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main
from data.io import UserError
from data.outputs import check_output_folder
from data.synthetic import make_synthetic_split, write_pets_sized_jpegs
from data.synthetic_captions import DEFAULT_SIZE, DEFAULT_TRAIN, DEFAULT_VAL, MAX_SHAPES, make_captioned_set

CLASS_SIZE, TRAIN_PER_CLASS, VAL_PER_CLASS = 64, 40, 10


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="folder to create; train/ and val/ go inside")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same images (default 0)")
    parser.add_argument("--size", type=int, default=None,
                        help=f"image side in pixels, at least 8 (default {CLASS_SIZE}; with --captions at least 48, "
                             f"default {DEFAULT_SIZE})")
    parser.add_argument("--train_per_class", type=int, default=None,
                        help=f"training images per class (default {TRAIN_PER_CLASS})")
    parser.add_argument("--val_per_class", type=int, default=None,
                        help=f"validation images per class (default {VAL_PER_CLASS})")
    parser.add_argument("--masks", action="store_true",
                        help="also write each validation image's shape as a mask, DIR/val_masks/<stem>.png "
                             "(255 on the object), for scripts/eval_explanations.py --masks_dir")
    parser.add_argument("--pets_sized", nargs=2, type=int, metavar=("TRAIN", "VAL"), default=None,
                        help="write TRAIN and VAL Pets-sized JPEGs instead of the drawn classes (--size, "
                             "--seed, --masks and the per-class counts are then not used)")
    parser.add_argument("--captions", action="store_true",
                        help="write the captioned set instead: DIR/train/, DIR/val/ and DIR/annotations/ with "
                             "captions_{train,val}.json, instances_{train,val}.json and object_words.txt (the "
                             "shape words' table for scripts/eval_grounding.py --words)")
    parser.add_argument("--train_scenes", type=int, default=None,
                        help=f"with --captions: training scenes (default {DEFAULT_TRAIN})")
    parser.add_argument("--val_scenes", type=int, default=None,
                        help=f"with --captions: validation scenes (default {DEFAULT_VAL})")
    parser.add_argument("--max_shapes", type=int, default=None, metavar="N",
                        help=f"with --captions: at most N shapes a scene, 1 to {MAX_SHAPES} (default {MAX_SHAPES}; "
                             "fewer make a set that a small captioner learns sooner)")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    check_output_folder(args.out, "--out")
    if args.captions:
        unused = [flag for flag, value in (("--pets_sized", args.pets_sized), ("--masks", args.masks or None),
                                           ("--train_per_class", args.train_per_class),
                                           ("--val_per_class", args.val_per_class)) if value is not None]
        if unused:
            raise UserError(f"--captions does not take {', '.join(unused)}: its polygons are in DIR/annotations, "
                            f"its counts are --train_scenes and --val_scenes")
        train = DEFAULT_TRAIN if args.train_scenes is None else args.train_scenes
        val = DEFAULT_VAL if args.val_scenes is None else args.val_scenes
        out = make_captioned_set(args.out, args.seed, train, val, DEFAULT_SIZE if args.size is None else args.size,
                                 MAX_SHAPES if args.max_shapes is None else args.max_shapes)
        print(f"wrote {train} training and {val} validation scenes with captions to {out}")
        return
    if args.train_scenes is not None or args.val_scenes is not None or args.max_shapes is not None:
        raise UserError("--train_scenes, --val_scenes and --max_shapes describe the scenes of --captions; "
                        "give --captions too")
    if args.pets_sized:
        train, val = args.pets_sized
        if train < 1 or val < 1:
            raise UserError("--pets_sized needs at least 1 training and 1 validation image")
        write_pets_sized_jpegs(Path(args.out) / "train", train, labeled=True)
        write_pets_sized_jpegs(Path(args.out) / "val", val, first_id=train, labeled=True)
        print(f"wrote {train} training and {val} validation Pets-sized JPEGs to {args.out}")
        return
    train = TRAIN_PER_CLASS if args.train_per_class is None else args.train_per_class
    val = VAL_PER_CLASS if args.val_per_class is None else args.val_per_class
    if train < 1 or val < 1:
        raise UserError("--train_per_class and --val_per_class must be at least 1")
    size = CLASS_SIZE if args.size is None else args.size
    out = make_synthetic_split(args.out, args.seed, size, train, val, masks=args.masks)
    print(f"wrote {37 * train} training and {37 * val} validation images to {out}")


if __name__ == "__main__":
    run_main(main)
