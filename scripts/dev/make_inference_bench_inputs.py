"""Inputs for timing whole inference: a folder of Pets-sized JPEGs and a random-weight checkpoint.

    python scripts/dev/make_inference_bench_inputs.py --out /tmp/bench --count 2169 --model L_16_imagenet1k
    bash scripts/p1_inference.sh /tmp/bench/images /tmp/bench/pred.csv /tmp/bench/L_16_imagenet1k.pt

Speed does not depend on the weights; the head is made random because a fresh package head is zero.
"""
import argparse
from pathlib import Path

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main
from data.io import UserError
import torch
from data.synthetic import write_pets_sized_jpegs
from models.checkpoint import model_config, save_checkpoint
from models.vit import MODEL_NAMES, native_image_size, random_vit


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for images/ and MODEL.pt")
    parser.add_argument("--count", type=int, default=2169, help="JPEGs to write (default: 2169, the test set)")
    parser.add_argument("--model", choices=MODEL_NAMES, default="L_16_imagenet1k", help="(default: L_16_imagenet1k)")
    args = parser.parse_args(argv)
    if args.count < 1:
        raise UserError(f"--count must be at least 1, not {args.count}")
    out = Path(args.out)
    images = write_pets_sized_jpegs(out / "images", args.count)
    torch.manual_seed(0)
    model = random_vit(args.model, head_std=0.02)
    save_checkpoint(out / f"{args.model}.pt", model, model_config(args.model, native_image_size(args.model)))
    print(f"wrote {args.count} images to {images} and {out / (args.model + '.pt')}")


if __name__ == "__main__":
    run_main(main)
