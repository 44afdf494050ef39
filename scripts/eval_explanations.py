"""Measure how far to trust each kind of map: perturbation tests, localisation, a sanity check, and
the same for several checkpoints of one model.

For every image and method the map orders the patches; removing 0%, 10%, ..., 100% of them (their
pixels replaced by --fill, or imputed from the pixels kept with --removal road) shows whether the
model keeps its class and how sure it stays. Positive test (Chefer et al.): the share of predictions
kept, most relevant first (lower AUC is better); negative test: least relevant first (higher is
better); deletion and insertion (RISE): the class's probability as the most relevant patches go, or
come back into the fully removed image. With --masks_dir (<image stem>.png, non-zero = object; Pets
trimaps are understood) also the pointing game, the energy-based pointing game (the share of the
map's positive mass on the object) and the IoU of the map's top patches with the object.

Every number is a mean over the images with a bootstrap 95% interval; each method is compared with
the random maps (the mean of 5 seeds) image by image, and "beats" only when the interval of the
difference excludes 0. Maps of one class (relevancy, ...) are scored for the predicted class and,
when the file names carry labels ({label}_{id}), for the true class too. The sanity check re-draws
the head and then the blocks from the top, and asks whether each map changes with them.
Several --ckpt are scored on the same images with the same random maps, with each one's accuracy
and the rank correlation between accuracy and each measure. Prints tables and, as the last line,
one JSON object (also written to --out_json).

  python scripts/eval_explanations.py --ckpt runs/l16/best.pt --img_dir oxford-iiit-pet/images \\
      --masks_dir oxford-iiit-pet/annotations/trimaps --limit 500 --out_json expl.json --out_png expl.png
"""
import argparse
import datetime
import math
import os
import sys

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main
from data.io import UserError
import torch
from tqdm import tqdm

from data.datasets import ImageFolder
from data.images import list_images
from data.outputs import check_distinct_outputs, check_output_file
from data.masks import read_masks
from data.pets import label_from_name
from data.transforms import eval_transform_from_config
from models.checkpoint import model_from_checkpoint
from models.explain.faithfulness import (CURVES, FRACTIONS, FULL_FRACTIONS, HIGHER_IS_BETTER, RANDOM_SEEDS,
                                         REMOVALS, ImageScores, Removal, faithfulness_table, image_measures,
                                         localisation_measures, mean_measures, object_shares, perturbation_scores)
from models.explain.methods import MEASURED, class_specific, explanation_maps
from models.explain.sanity import cascading_randomisation, sanity_summary, sanity_table, verdict_stage, vit_stages
from models.explain.statistics import (RESAMPLES, intervals, pairwise_differences, percentile_interval,
                                       resample_means, estimates_rank_correlation, summarize_measures, interval_text)
from models.figures.classifier import checkpoints_figure, perturbation_figure
from models.figures.plots import check_figure_path, write_report
from models.attention import inference_model
from models.training.flags import add_batch_size_flag, add_device_flag, check_flags
from models.training.loader import make_loader
from models.training.runtime import default_num_workers, resolve_device
from models.training.settings import EVALUATION_RULES, check_settings
from models.vit import grid_size

SANITY_IMAGES = 32


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, nargs="+", metavar="FILE",
                   help="checkpoints written by p1_train.py; several (of one model and input size) are scored "
                        "on the same images and compared")
    p.add_argument("--img_dir", required=True, metavar="DIR", help="the images (.jpg/.jpeg/.png, any names)")
    p.add_argument("--masks_dir", metavar="DIR",
                   help="object masks <image stem>.png of the image's size (non-zero = object, or Pets "
                        "trimaps); an image without one, or whose mask has another size or no object, is "
                        "left out of localisation only, with a warning")
    p.add_argument("--methods", nargs="+", default=list(MEASURED), metavar="NAME",
                   help=f"the maps to measure, any of: {' '.join(MEASURED)} (default: all)")
    p.add_argument("--limit", type=int, metavar="N",
                   help="measure N images spread evenly over the folder's sorted names (default: all)")
    add_batch_size_flag(p, 32, "images per pass")
    p.add_argument("--removal", choices=REMOVALS, default="grey",
                   help="how removed patches are replaced: grey, the constant --fill; road, ROAD's noisy "
                        "linear imputation from the pixels kept (slower) (default: %(default)s)")
    p.add_argument("--fill", type=float, default=0.0, metavar="X",
                   help="value, in normalised units, that replaces removed pixels with --removal grey "
                        "(default 0: mid-grey for mean = std = 0.5); a finite number")
    p.add_argument("--seed", type=int, default=0,
                   help=f"seed of the random maps (seeds S..S+{RANDOM_SEEDS - 1}), the bootstrap, the sanity "
                        "check's weights and ROAD's noise, 0..2^32-1 (default %(default)s)")
    p.add_argument("--resamples", type=int, default=RESAMPLES, metavar="R",
                   help="bootstrap resamples of the images behind every interval (default %(default)s)")
    p.add_argument("--sanity_images", type=int, default=SANITY_IMAGES, metavar="N",
                   help="images of the sanity check, spread over the others; 0 skips it (default %(default)s)")
    p.add_argument("--out_json", metavar="FILE", help="also write the JSON result here")
    p.add_argument("--out_png", metavar="FILE",
                   help="the perturbation curves of every method here (one checkpoint), or each measure "
                        "against the checkpoints' accuracy (several)")
    add_device_flag(p)
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
    if len(set(args.ckpt)) != len(args.ckpt):
        raise UserError("a checkpoint is listed twice in --ckpt")
    check_flags(args, "batch_size")
    check_settings(vars(args), EVALUATION_RULES)
    if args.sanity_images == 1:
        raise UserError("--sanity_images needs at least 2 images (its floor compares two), or 0 to skip it")
    if not math.isfinite(args.fill):  # NaN or infinite pixels make every prediction the same: flat curves
        raise UserError(f"--fill must be a finite number, not {args.fill}")


def check_outputs(args, files: list) -> None:
    """--out_json and --out_png can be written and are none of the inputs, before any work."""
    inputs = [*args.ckpt, *files]
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


def object_masks(files: list, masks_dir, grid) -> tuple:
    """((N, gh, gw) object share of each patch, (N,) whether each image has a usable mask; see data.masks)."""
    shares = torch.zeros(len(files), *grid)
    found = read_masks(masks_dir, files)
    for i, mask in enumerate(found):
        if mask is not None:
            shares[i] = object_shares(torch.from_numpy(mask), grid)
    return shares, torch.tensor([mask is not None for mask in found])


def file_labels(files: list, num_classes: int):
    """(N,) the labels in the files' `{label}_{id}` names, or None unless every name holds one the model
    knows: then accuracy and true-class maps are left out."""
    labels = [label_from_name(f) for f in files]
    if any(label is None or not 0 <= label < num_classes for label in labels):
        return None
    return torch.tensor(labels)


def load_checkpoints(paths: list, device) -> list:
    """[(path, model ready to predict, config)]; all of one input size and patch grid, so that they see
    the same images and the same random maps."""
    loaded = []
    for path in paths:
        model, config = model_from_checkpoint(path)
        loaded.append((path, inference_model(model, device), config))
    first = loaded[0]
    for path, model, config in loaded[1:]:
        if (config["image_size"], grid_size(model)) != (first[2]["image_size"], grid_size(first[1])):
            raise UserError(f"{path} takes {config['image_size']} px images on a {grid_size(model)} grid, "
                            f"{first[0]} {first[2]['image_size']} px on {grid_size(first[1])}: compare "
                            "checkpoints of one input size")
        if config["num_classes"] != first[2]["num_classes"]:
            raise UserError(f"{path} has {config['num_classes']} classes, {first[0]} {first[2]['num_classes']}")
    return loaded


def batch_measures(model, images, indices, method, targets, logits, removal, seeds, shares, has_mask) -> dict:
    """One method's per-image measures on a batch, for `targets`: the mean over `seeds` for random."""
    per_map = []
    for seed in seeds:
        _, maps = explanation_maps(model, images, [method], indices, seed,
                                   targets if class_specific(method) else None)
        measures = image_measures(perturbation_scores(model, images, maps[method], targets, removal, logits))
        if shares is not None:
            for key, value in localisation_measures(maps[method], shares).items():
                measures[key] = value.masked_fill(~has_mask, float("nan"))
        per_map.append(measures)
    return mean_measures(per_map)


def score_checkpoint(model, dataset, args, device, shares, has_mask, labels) -> dict:
    """Per-image measures of one model: {"methods": {method: {measure: (N,)}}, "true_class": ... (maps
    and tests for the label; with labels only), "correct": (N,) in % or None}."""
    loader = make_loader(dataset, args.batch_size, default_num_workers(device), device)
    removal = Removal(args.removal, args.fill, torch.Generator().manual_seed(args.seed))
    seeds = range(args.seed, args.seed + RANDOM_SEEDS)
    specific = [m for m in args.methods if class_specific(m)]
    rescored_methods = [m for m in args.methods if m == "random" or m in specific] if specific else []
    predicted_scores, true_scores, correct = ImageScores(), ImageScores(), []
    for images, indices in tqdm(loader, desc="explanations", unit="batch", disable=args.no_progress):
        images = images.to(device)
        with torch.no_grad():
            logits = model(images)
        predicted = logits.argmax(dim=-1)
        located = (shares[indices], has_mask[indices]) if shares is not None else (None, None)
        batch = {}
        for method in args.methods:
            method_seeds = seeds if method == "random" else [args.seed]
            batch[method] = batch_measures(model, images, indices, method, predicted, logits, removal,
                                           method_seeds, *located)
            predicted_scores.add(method, batch[method])
        if labels is None:
            continue
        truth = labels[indices].to(device)
        correct.append(100.0 * (predicted == truth).double().cpu())
        # Where the prediction is right, the true class's maps and tests are the predicted class's:
        # only the wrong images are scored again (random too, as the baseline of the true class's tests).
        wrong = (predicted != truth).cpu()
        on_device = wrong.to(device)
        for method in rescored_methods:
            measures = {key: value.clone() for key, value in batch[method].items()}
            if wrong.any():
                method_seeds = seeds if method == "random" else [args.seed]
                rescored = batch_measures(model, images[on_device], indices[wrong], method, truth[on_device],
                                          logits[on_device], removal, method_seeds,
                                          *(part[wrong] if part is not None else None for part in located))
                for key, value in rescored.items():
                    measures[key][wrong] = value
            true_scores.add(method, measures)
    return {"methods": predicted_scores.tensors(), "true_class": true_scores.tensors() if specific and labels
            is not None else {}, "correct": torch.cat(correct) if correct else None}


def sanity_check(model, dataset, args, device) -> dict:
    """The cascading randomisation of `model` on `--sanity_images` images, each map for the trained
    model's predicted class: the `sanity_summary` of every method."""
    picked = spread(list(range(len(dataset))), args.sanity_images)
    images = torch.stack([dataset[i][0] for i in picked]).to(device)
    indices = torch.tensor(picked)
    with torch.no_grad():
        target = model(images).argmax(dim=-1)

    def maps_of(network):
        return {method: explanation_maps(network, images, [method], indices, args.seed,
                                         target if class_specific(method) else None)[1][method]
                for method in args.methods}

    stages = vit_stages(model)
    result = cascading_randomisation(model, stages, maps_of, args.seed)
    return sanity_summary(result, verdict_stage(stages, "block"), args.resamples, args.seed)


def with_curves(summary: dict, per_item: dict) -> dict:
    """The summary's methods with their mean curves, in shares, beside the measures."""
    for method, measures in per_item.items():
        for curve in CURVES:
            summary[method][curve] = [round(v, 4) for v in measures[curve].mean(dim=0).tolist()]
    return summary


def checkpoint_report(scores: dict, args) -> dict:
    """The measures of one checkpoint with intervals, its comparisons, and its accuracy."""
    summary = lambda per_item: with_curves(summarize_measures(  # noqa: E731
        per_item, HIGHER_IS_BETTER, "random", args.resamples, args.seed), per_item)
    compared = [m for m in args.methods if m != "random"]
    report = {"methods": summary(scores["methods"]),
              "true_class": {m: s for m, s in summary(scores["true_class"]).items() if m != "random"}
              if scores["true_class"] else {},
              "differences": pairwise_differences(scores["methods"], compared, HIGHER_IS_BETTER,
                                                  args.resamples, args.seed),
              "accuracy": None, "accuracy_ci95": None}
    if scores["correct"] is not None:
        value, bounds = intervals({"accuracy": scores["correct"]}, args.resamples, args.seed)["accuracy"]
        report["accuracy"], report["accuracy_ci95"] = round(value, 2), [round(b, 2) for b in bounds]
    return report


def checkpoint_series(all_scores: list, reports: list, args) -> dict:
    """Across checkpoints (same images): each measure's paired difference from the most accurate
    checkpoint, and the rank correlation between accuracy and each measure with its interval (images
    resampled jointly for every checkpoint)."""
    accuracy = torch.stack([s["correct"] for s in all_scores])
    best = int(torch.stack([a.mean() for a in accuracy]).argmax())
    accuracy_replicates = resample_means(accuracy, args.resamples, args.seed)
    rank_correlation, against_best = {}, [{} for _ in all_scores]
    for section, suffix in (("methods", ""), ("true_class", "@true_class")):
        for method in all_scores[0][section]:
            if section == "true_class" and method == "random":
                continue
            for measure, better in HIGHER_IS_BETTER.items():
                values = torch.stack([s[section][method][measure] for s in all_scores])
                replicates = resample_means(values, args.resamples, args.seed)
                point = estimates_rank_correlation(accuracy.mean(dim=1), values.nanmean(dim=1))
                spread_ = percentile_interval(estimates_rank_correlation(accuracy_replicates.T, replicates.T))
                rank_correlation.setdefault(method + suffix, {})[measure] = {
                    "spearman": round(float(point), 3), "spearman_ci95": [round(float(b), 3) for b in spread_]}
                if section != "methods":
                    continue
                differences = summarize_measures(
                    {k: {measure: values[k]} for k in range(len(all_scores))} | {"best": {measure: values[best]}},
                    {measure: better}, "best", args.resamples, args.seed)
                for k in range(len(all_scores)):
                    if k != best:
                        against_best[k].setdefault(method, {})[measure] = differences[k]["against_best"][measure]
    for report, differences in zip(reports, against_best):
        report["against_most_accurate"] = differences
    return {"rank_correlation": rank_correlation, "most_accurate": args.ckpt[best]}


def checkpoints_table(reports: list, measures=("pointing_game", "energy", "deletion_auc", "insertion_auc")) -> str:
    """One row per checkpoint and method: accuracy and the main measures, each with its interval."""
    lines = ["| checkpoint | accuracy % | method | " + " | ".join(measures) + " |",
             "|---|---|---|" + "---|" * len(measures)]
    for report in reports:
        accuracy = interval_text(report["accuracy"], report["accuracy_ci95"])
        for method, s in report["methods"].items():
            cells = [interval_text(s.get(m), s.get(f"{m}_ci95")) for m in measures]
            lines.append(f"| {report['checkpoint']} | {accuracy} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rank_correlation_table(rank_correlation: dict) -> str:
    measures = list(HIGHER_IS_BETTER)
    lines = ["| method | " + " | ".join(measures) + " |", "|---|" + "---|" * len(measures)]
    for method, row in rank_correlation.items():
        cells = [f"{row[m]['spearman']:+.2f} [{row[m]['spearman_ci95'][0]:+.2f}, {row[m]['spearman_ci95'][1]:+.2f}]"
                 for m in measures]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    check_arguments(args)
    files = spread(list_images(args.img_dir), args.limit)
    check_outputs(args, files)
    device = resolve_device(args.device)
    checkpoints = load_checkpoints(args.ckpt, device)
    _, first_model, config = checkpoints[0]
    grid = grid_size(first_model)
    dataset = ImageFolder(args.img_dir, eval_transform_from_config(config), labeled=False, files=files,
                          skip_bad_images=args.skip_bad_images, progress=not args.no_progress)
    # After the unreadable images are left out: the loader's indices are those of dataset.files.
    shares, has_mask = object_masks(dataset.files, args.masks_dir, grid) if args.masks_dir else (None, None)
    labels = file_labels(dataset.files, config["num_classes"])
    located = int(has_mask.sum()) if has_mask is not None else 0
    print(f"{len(dataset)} images from {args.img_dir}, {located} with a mask, "
          f"{'labels from the file names' if labels is not None else 'no labels in the file names'}; "
          f"patches {'replaced by ' + format(args.fill, 'g') if args.removal == 'grey' else 'imputed (ROAD)'}; "
          f"intervals: bootstrap 95%, {args.resamples} resamples of the images")
    all_scores, reports = [], []
    for path, model, model_config in checkpoints:
        scores = score_checkpoint(model, dataset, args, device, shares, has_mask, labels)
        report = {"checkpoint": str(path), "model": model_config["model"], **checkpoint_report(scores, args)}
        if args.sanity_images:
            report["sanity"] = sanity_check(model, dataset, args, device)
        all_scores.append(scores)
        reports.append(report)
        accuracy = (f", accuracy {interval_text(report['accuracy'], report['accuracy_ci95'])}%"
                    if labels is not None else "")
        print(f"\n{path} ({model_config['model']}{accuracy}): maps of the predicted class")
        print(faithfulness_table(report["methods"]))
        if report["true_class"]:
            print("maps of the true class (tests follow the true class):")
            print(faithfulness_table(report["true_class"]))
        if "sanity" in report:
            print("sanity check: Spearman correlation with the trained model's maps as the weights are re-drawn:")
            print(sanity_table(report["sanity"]))
    series = {}
    if len(checkpoints) > 1 and labels is not None:
        series = checkpoint_series(all_scores, reports, args)
        print("\nthe checkpoints on the same images (maps of the predicted class):")
        print(checkpoints_table(reports))
        print("rank correlation (Spearman) between accuracy and each measure, over the checkpoints:")
        print(rank_correlation_table(series["rank_correlation"]))
    elif len(checkpoints) > 1:
        print("\nno labels in the file names: no accuracy, so no rank correlation between the checkpoints")
    first = reports[0]
    record = {
        **{key: first[key] for key in ("methods", "true_class", "differences", "accuracy", "accuracy_ci95")},
        "sanity": first.get("sanity"),
        "images": len(dataset),
        "located_images": located,
        "random_seeds": list(range(args.seed, args.seed + RANDOM_SEEDS)),
        "fractions": list(FRACTIONS),
        "full_fractions": list(FULL_FRACTIONS),
        "removal": args.removal,
        "fill": args.fill if args.removal == "grey" else None,
        "seed": args.seed,
        "bootstrap": {"resamples": args.resamples, "level": 0.95, "seed": args.seed, "over": "images"},
        "model": first["model"],
        "checkpoint": first["checkpoint"],
        "img_dir": str(args.img_dir),
        "masks_dir": args.masks_dir and str(args.masks_dir),
        "command": " ".join(["scripts/eval_explanations.py", *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.date.today().isoformat(),
        "device": str(device),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
    if has_mask is not None:
        value, bounds = intervals({"share": 100 * shares[has_mask].flatten(1).mean(dim=1)},
                                  args.resamples, args.seed)["share"]
        record["object_area_share"], record["object_area_share_ci95"] = round(value, 2), [round(b, 2) for b in bounds]
    if len(checkpoints) > 1:
        record["checkpoints"] = reports
        record.update(series)
    if len(checkpoints) > 1 and series:
        title = f"Measures against accuracy, {len(checkpoints)} checkpoints, {len(dataset)} images"
        draw = lambda: checkpoints_figure(reports, title)  # noqa: E731
    else:
        title = f"Perturbation tests, {len(dataset)} images, {first['model']}"
        draw = lambda: perturbation_figure(first["methods"], FRACTIONS, title)  # noqa: E731
    write_report(record, args.out_json, args.out_png, draw)


if __name__ == "__main__":
    run_main(main)
