"""Measure how far to trust each kind of map: perturbation tests and, with masks, localisation.

For every image and method the map orders the patches; removing 0%, 10%, ..., 90% of them (their
pixels replaced by --fill in normalised units) shows whether the model keeps the class it predicted
on the intact image. Positive test: most relevant first (lower AUC is better). Negative test: least
relevant first (higher AUC is better). With --masks_dir (<image stem>.png, non-zero = object; Pets
trimaps are understood) also the pointing game and the IoU of the map's top patches with the object.
A method that does not beat `random` on these tests should not be trusted. Prints a table per
method and, as the last line, one JSON object (also written to --out_json).

  python scripts/eval_explanations.py --ckpt runs/l16/best.pt --img_dir oxford-iiit-pet/images \\
      --masks_dir oxford-iiit-pet/annotations/trimaps --limit 500 --out_json expl.json --out_png expl.png
"""
import argparse
import datetime
import math
import os
import sys

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main  # first: Ctrl-C during the slow imports below is one line
from data.io import UserError
import torch
from tqdm import tqdm

from data.datasets import ImageFolder
from data.images import list_images
from data.outputs import check_distinct_outputs, check_output_file
from data.masks import read_masks
from data.transforms import eval_transform_from_config
from models.checkpoint import model_from_checkpoint
from models.explain.faithfulness import FRACTIONS, FaithfulnessTally, faithfulness_table, grid_mask, perturbation_curves
from models.explain.methods import MEASURED, explanation_maps
from models.figures.classifier import perturbation_figure
from models.figures.plots import check_figure_path, write_report
from models.training.predict import inference_model, make_loader
from models.training.runtime import MAX_SEED, default_num_workers, resolve_device
from models.vit import grid_size


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, metavar="FILE", help="a checkpoint written by p1_train.py")
    p.add_argument("--img_dir", required=True, metavar="DIR", help="the images (.jpg/.jpeg/.png, any names)")
    p.add_argument("--masks_dir", metavar="DIR",
                   help="object masks <image stem>.png of the image's size (non-zero = object, or Pets "
                        "trimaps); an image without one, or whose mask has another size or no object, is "
                        "left out of localisation only, with a warning")
    p.add_argument("--methods", nargs="+", default=list(MEASURED), metavar="NAME",
                   help=f"the maps to measure, any of: {' '.join(MEASURED)} (default: all)")
    p.add_argument("--limit", type=int, metavar="N",
                   help="measure N images spread evenly over the folder's sorted names (default: all)")
    p.add_argument("--batch_size", type=int, default=32, metavar="N", help="images per pass (default %(default)s)")
    p.add_argument("--fill", type=float, default=0.0, metavar="X",
                   help="value, in normalised units, that replaces removed pixels (default 0: mid-grey "
                        "for mean = std = 0.5); a finite number")
    p.add_argument("--seed", type=int, default=0, help="seed of the random maps, 0..2^32-1 (default %(default)s)")
    p.add_argument("--out_json", metavar="FILE", help="also write the JSON result here")
    p.add_argument("--out_png", metavar="FILE", help="draw both perturbation curves of every method here")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--skip_bad_images", action="store_true",
                   help="warn about corrupt or truncated images and leave them out instead of stopping")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def check_arguments(args) -> None:
    unknown = [m for m in args.methods if m not in MEASURED]
    if unknown:
        raise UserError(f"unknown method {unknown[0]!r}; choose from {', '.join(MEASURED)}")
    if len(set(args.methods)) != len(args.methods):
        raise UserError("a method is listed twice in --methods")
    for flag in ("limit", "batch_size"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UserError(f"--{flag} must be at least 1, not {value}")
    if not math.isfinite(args.fill):  # NaN or infinite pixels make every prediction the same: flat curves
        raise UserError(f"--fill must be a finite number, not {args.fill}")
    if not 0 <= args.seed <= MAX_SEED:
        raise UserError(f"--seed must be in 0..{MAX_SEED}, not {args.seed}")


def check_outputs(args, files: list) -> None:
    """--out_json and --out_png can be written and are none of the inputs, before any work."""
    inputs = [args.ckpt, *files]
    if args.out_json:
        check_output_file(args.out_json, "--out_json", inputs)
    if args.out_png:
        check_figure_path(args.out_png, "--out_png", inputs)
    check_distinct_outputs({"--out_json": args.out_json, "--out_png": args.out_png})


def spread(files: list, limit: int | None) -> list:
    """`limit` files evenly spaced over the sorted list, so every class of a `{label}_...` folder shows."""
    if limit is None or limit >= len(files):
        return files
    return [files[i * len(files) // limit] for i in range(limit)]


def object_patches(files: list, masks_dir, grid) -> tuple:
    """((N, gh, gw) object patches, (N,) whether each image has a usable mask; see data.masks)."""
    masks = torch.zeros(len(files), *grid, dtype=torch.bool)
    found = read_masks(masks_dir, files)
    for i, mask in enumerate(found):
        if mask is not None:
            masks[i] = grid_mask(torch.from_numpy(mask), grid)
    return masks, torch.tensor([mask is not None for mask in found])


def main(argv=None):
    args = parse_args(argv)
    check_arguments(args)
    files = spread(list_images(args.img_dir), args.limit)
    check_outputs(args, files)
    device = resolve_device(args.device)
    model, config = model_from_checkpoint(args.ckpt)
    model = inference_model(model, device)
    grid = grid_size(model)
    dataset = ImageFolder(args.img_dir, eval_transform_from_config(config), labeled=False, files=files,
                          skip_bad_images=args.skip_bad_images, progress=not args.no_progress)
    # After the unreadable images are left out: the loader's indices are those of dataset.files.
    masks, has_mask = object_patches(dataset.files, args.masks_dir, grid) if args.masks_dir else (None, None)
    loader = make_loader(dataset, args.batch_size, default_num_workers(device), device)

    tally = FaithfulnessTally(args.methods)
    for images, indices in tqdm(loader, desc="explanations", unit="batch", disable=args.no_progress):
        images = images.to(device)
        predicted, maps = explanation_maps(model, images, args.methods, indices, args.seed)
        for method, method_maps in maps.items():
            tally.add_curves(method, *(perturbation_curves(model, images, method_maps, predicted, first,
                                                           FRACTIONS, args.fill) for first in (True, False)))
            if masks is not None:
                located = has_mask[indices]
                tally.add_localisation(method, method_maps[located.to(device)].cpu(), masks[indices][located])
        tally.images += len(images)
        tally.located += int(has_mask[indices].sum()) if masks is not None else 0

    summary = tally.summary()
    print(f"{tally.images} images from {args.img_dir}, {tally.located} with a mask; {config['model']}, "
          f"patches replaced by {args.fill:g}")
    print(faithfulness_table(summary))
    record = {
        "methods": summary,
        "images": tally.images,
        "located_images": tally.located,
        "fractions": list(FRACTIONS),
        "fill": args.fill,
        "seed": args.seed,
        "model": config["model"],
        "checkpoint": str(args.ckpt),
        "img_dir": str(args.img_dir),
        "masks_dir": args.masks_dir and str(args.masks_dir),
        "command": " ".join(["scripts/eval_explanations.py", *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.date.today().isoformat(),
        "device": str(device),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
    title = f"Perturbation tests, {tally.images} images, {config['model']}"
    write_report(record, args.out_json, args.out_png, lambda: perturbation_figure(summary, FRACTIONS, title))


if __name__ == "__main__":
    run_main(main)
