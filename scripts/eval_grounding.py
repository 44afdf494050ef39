"""Does a word's map point at the object the word names? A grounding report for CATR on COCO-format data.

For every caption word that names an object category (a word table, --words), each method's map of
that word is compared with the category's instance masks in the image (the union of its instances):
  - attention correctness: the share of the map's mass inside the object (Liu et al., AAAI 2017);
    the uniform map scores the object's area share;
  - pointing game: the map's maximum within {tolerance} pixels of the object (Zhang et al., ECCV 2016);
  - deletion test: 0%, 10%, ..., 90% of the cells removed in the map's order, hidden from every
    attention (encoder self-attention and decoder cross-attention), and the word re-scored teacher-
    forced: its probability relative to the intact image. Most relevant first: lower area is better;
    least relevant first: higher is better.
Scores are averaged per category, then over categories.

Methods: attention@L, decoder layer L's cross-attention averaged over heads, for every layer
(--layers), relevancy (Chefer, Gur & Wolf, ICCV 2021, all layers), attnlrp (AttnLRP's CP-LRP,
Achtibat et al., ICML 2024: relevance of the encoder's input cells), legrad (LeGrad, Bousselham et
al., ICCV 2025, over the decoder layers), and two baselines, uniform (every cell equal; it has no
order, so no deletion test) and random (a fixed-seed random map).

Captions: --captions captions_*.json (reference mode: every reference caption is teacher-forced,
grounding measured apart from captioning errors; a word whose category is absent from the image is
not graded), or the model's own (generated mode: --generate, greedy or --beam N, or --results, an
eval_captions.py results file). In generated mode a word whose category is absent is a
hallucination: CHAIR_i, the share of object mentions (each category once per caption) naming an
absent category, and CHAIR_s, the share of captions holding one (Rohrbach et al., EMNLP 2018).
A word of several WordPiece pieces gets the sum of its pieces' maps and the product of their
probabilities; a several-word name (hot dog) the map of its last word.

Each image's results are appended to --cache as soon as it is done: a rerun with the same settings
continues where the last one stopped. Prints a Markdown table and, as the last line, one JSON object
(also written to --out_json).

    python scripts/eval_grounding.py --img_dir val2017/ --instances annotations/instances_val2017.json \\
        --captions annotations/captions_val2017.json --version v2 --out_json grounding.json \\
        --out_png grounding.png
"""
import argparse
import datetime
import math
from pathlib import Path

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main
from data.flags import layer_index
from data.io import UserError, warn
import torch
from tqdm import tqdm

import catr
from catr.cli import (add_search_arguments, add_skip_argument, add_weight_arguments, captioner_config, check_beam,
                      check_search_arguments, load_captioner, search_description, weights_description,
                      weights_identity)
from catr.grounding import Grader, caption_ids, is_record
from catr.token_methods import TOKEN_METHODS
from data.coco_captions import CaptionAnnotations, load_annotations, load_results
from data.coco_instances import load_instances
from data.images import open_or_skip, some_names
from data.object_words import find_mentions, load_word_table
from data.outputs import check_distinct_outputs, check_output_file
from data.resumable import file_identity, folder_identity, results_cache
from models.explain.faithfulness import FRACTIONS
from models.explain.grounding import HIGHER_IS_BETTER, POINTING_TOLERANCE, summarize, word_measures
from models.explain.sanity import cascading_randomisation, captioner_stages, sanity_summary, sanity_table, verdict_stage
from models.explain.statistics import (RESAMPLES, estimate, interval_text, intervals, leader, pairwise_differences,
                                       percentile_interval, resample_means, estimates_rank_correlation,
                                       summarize_measures)
from models.figures.grounding import grounding_figure
from models.figures.plots import check_figure_path, write_report
from models.training.runtime import resolve_device
from models.training.settings import EVALUATION_RULES, check_settings

BASELINES = ("uniform", "random")
SANITY_IMAGES = 8


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.replace("{tolerance}", str(POINTING_TOLERANCE)),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--img_dir", required=True, metavar="DIR", help="the images, e.g. val2017/")
    parser.add_argument("--instances", required=True, metavar="FILE",
                        help="COCO instance annotations, e.g. annotations/instances_val2017.json")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--captions", metavar="FILE",
                        help="reference mode: teacher-force every caption of this captions_*.json")
    source.add_argument("--generate", action="store_true",
                        help="generated mode: caption the images (greedy, or --beam N) and grade those captions")
    source.add_argument("--results", metavar="FILE",
                        help="generated mode: grade the captions of this results file (eval_captions.py "
                             "--out_results)")
    parser.add_argument("--words", metavar="FILE",
                        help="word table, lines 'category: word, word, ...' naming the instances file's "
                             "categories (default: the shipped COCO table, data/coco_object_words.txt)")
    parser.add_argument("--layers", type=int, nargs="+", metavar="L",
                        help="decoder layers whose cross-attention is measured; negative counts from the "
                             "last (default: every layer)")
    parser.add_argument("--no_deletion", action="store_true",
                        help="skip the deletion test (it re-scores each word 18 times per method)")
    parser.add_argument("--limit", type=int, metavar="N", help="grade only the first N images, by image id")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random maps, 0..2^32-1 (default: %(default)s)")
    parser.add_argument("--cache", metavar="FILE",
                        help="per-image results, appended as each image is done; a rerun continues it "
                             "(default: beside --out_json, named <its stem>.images.jsonl)")
    parser.add_argument("--out_json", metavar="FILE", help="also write the JSON result here")
    parser.add_argument("--out_png", metavar="FILE",
                        help="bar chart of correctness and pointing game per method, and the deletion curves")
    parser.add_argument("--resamples", type=int, default=RESAMPLES, metavar="R",
                        help="bootstrap resamples of the words behind every interval (default: %(default)s)")
    parser.add_argument("--sanity_images", type=int, default=SANITY_IMAGES, metavar="N",
                        help="the sanity check's images (the first N graded); 0 skips it (default: %(default)s)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    add_skip_argument(parser)
    add_weight_arguments(parser, several=True)
    add_search_arguments(parser, batch_size=8)
    return parser.parse_args(argv)


def check_arguments(args) -> list:
    """The methods measured, after every check that needs no file."""
    check_search_arguments(args)
    check_settings(vars(args), EVALUATION_RULES)
    runs = each_weights(args)
    if len(runs) > 1 and not args.captions:
        raise UserError("several --weights are compared on the same words: give --captions (reference mode)")
    if args.weights and len(set(args.weights)) != len(args.weights):
        raise UserError("a file is listed twice in --weights")
    num_layers = captioner_config(runs[0]).dec_layers
    for run in runs[1:]:
        if captioner_config(run).dec_layers != num_layers:
            raise UserError(f"{run.weights} has {captioner_config(run).dec_layers} decoder layers, {runs[0].weights} "
                            f"{num_layers}: compare captioners of one shape")
    layers = range(num_layers) if args.layers is None else args.layers
    layers = sorted({layer_index(layer, num_layers, "the decoder", "--layers") for layer in layers})
    for run in runs:
        check_outputs(run)
    return [f"attention@{layer}" for layer in layers] + [*TOKEN_METHODS, *BASELINES]


def cache_file(args):
    """--cache, or the file beside --out_json; None without either."""
    if args.cache:
        return Path(args.cache)
    return args.out_json and Path(args.out_json).with_name(Path(args.out_json).stem + ".images.jsonl")


def check_outputs(args) -> None:
    """Every file written can be written, none is an input, and no two are one file: before any work.
    The cache is read back by a rerun, so it is an output only."""
    inputs = [path for path in (args.img_dir, args.instances, args.captions, args.results, args.words) if path]
    outputs = {"--out_json": args.out_json, "--cache": cache_file(args), "--out_png": args.out_png}
    if args.out_png:
        check_figure_path(args.out_png, "--out_png", inputs)
    for flag, path in outputs.items():
        if path and flag != "--out_png":
            check_output_file(path, flag, inputs)
    check_distinct_outputs(outputs)


def caption_source(args, instances) -> dict:
    """Image id -> list of caption texts, or None per image in --generate mode."""
    if args.captions:
        return load_annotations(args.captions).references
    if args.results:
        known = CaptionAnnotations(Path(args.instances), references=dict.fromkeys(instances.file_names, ()))
        return {image_id: [caption] for image_id, caption in load_results(args.results, known).items()}
    return dict.fromkeys(instances.file_names)


def images_to_grade(instances, captions: dict, img_dir: Path, limit) -> dict:
    """Image id -> path, for the images with instances and captions that are in the folder."""
    if not img_dir.is_dir():
        raise UserError(f"folder not found: {img_dir}")
    wanted = sorted(image_id for image_id in captions if image_id in instances.file_names)
    if not wanted:
        raise UserError(f"the captions and {instances.path} share no image id")
    found = {image_id: img_dir / instances.file_names[image_id] for image_id in wanted
             if (img_dir / instances.file_names[image_id]).is_file()}
    if not found:
        raise UserError(f"{img_dir} holds none of the {len(wanted)} images to grade (such as "
                        f"{instances.file_names[wanted[0]]})")
    if len(found) < len(wanted):
        warn(f"{img_dir} holds {len(found)} of the {len(wanted)} images to grade; the others are left out")
    return dict(list(found.items())[:limit])


def check_table(table, instances) -> None:
    unknown = [category for category in table.categories if category not in instances.categories]
    if len(unknown) == len(table.categories):
        raise UserError(f"none of the word table's categories ({', '.join(table.categories[:5])}, ...) is a "
                        f"category of {instances.path}")
    if unknown:
        warn(f"{len(unknown)} categories of the word table are not in {instances.path} (such as "
             f"{unknown[0]!r}); their words are ignored")


def encode_captions(captions: dict, tokenizer, source) -> dict:
    """Reference and results mode: image id -> each caption's ids, [CLS] to [SEP]; a caption too long for
    the captioner is one line naming `source` and the image."""
    encoded = {}
    for image_id, texts in captions.items():
        try:
            encoded[image_id] = [tokenizer.encode(text) for text in texts]
        except UserError as err:
            raise UserError(f"{source}, image id {image_id}: {err}") from None
    return encoded


def check_captions_name_objects(captions: dict, table, tokenizer) -> None:
    """Reference and results mode: some caption (token ids) must hold a word of the table, or nothing
    can be graded."""
    for captions_ids in captions.values():
        for ids in captions_ids:
            if find_mentions(table, [word for word, _, _ in tokenizer.words(ids)]):
                return
    raise UserError(f"no caption holds a word of the word table {table.path}: nothing to grade")


def settings_record(args, methods: list, table) -> dict:
    """What a cache's results depend on, the inputs by what identifies them (data.resumable): a rerun
    with other inputs or settings must not mix with them."""
    captions = args.captions or args.results
    return {
        "mode": "reference" if args.captions else "generated",
        "captions": file_identity(captions) if captions else None,
        "search": search_description(args) if args.generate else None,
        "max_steps": args.max_steps if args.generate else None,
        "img_dir": folder_identity(args.img_dir),
        "instances": file_identity(args.instances),
        "words": file_identity(table.path),
        "weights": weights_identity(args),
        "methods": methods,
        "deletion": not args.no_deletion,
        "seed": args.seed,
        "fractions": list(FRACTIONS),
        "word_scores": ["correctness", "pointing", "pointing_scaled", "log_prob"],
    }


def markdown_table(summary: dict) -> str:
    """The measures with their 95% intervals, and each method's standing against the baselines."""
    columns = (("correctness", "correctness %"), ("pointing_game", f"pointing game {POINTING_TOLERANCE} px %"),
               ("pointing_game_scaled", "pointing game, half a cell %"),
               ("deletion_most_auc", "deletion AUC, most relevant first (lower is better)"),
               ("deletion_least_auc", "deletion AUC, least relevant first (higher is better)"))
    lines = ["| method | " + " | ".join(title for _, title in columns) + " | against the baselines |",
             "|---|" + "---|" * (len(columns) + 1)]
    for method, scores in summary.items():
        cells = [interval_text(scores.get(key), scores.get(f"{key}_ci95")) for key, _ in columns]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {standing_words(scores)} |")
    return "\n".join(lines)


def standing_words(scores: dict) -> str:
    """Which measures a method beats or loses to uniform and random on (intervals excluding 0)."""
    words = []
    for baseline in ("uniform", "random"):
        for verdict in ("beats", "loses"):
            names = [m.replace("_auc", "") for m, v in scores.get(f"against_{baseline}", {}).items()
                     if v["verdict"] == verdict]
            if names:
                words.append(f"{verdict} {baseline} in {', '.join(names)}")
    return "; ".join(words) or "-"


def hallucination_rates(records: list) -> dict:
    """CHAIR_i over object mentions (each category once per caption) and CHAIR_s over captions, in %."""
    captions = [caption for record in records for caption in record["captions"]]
    mentions = sum(len(caption["named"]) for caption in captions)
    absent = sum(len(caption["absent"]) for caption in captions)
    return {"chair_i": round(100 * absent / mentions, 2) if mentions else None,
            "chair_s": round(100 * sum(bool(c["absent"]) for c in captions) / len(captions), 2) if captions else None,
            "object_mentions": mentions, "captions": len(captions)}


def open_annotated(path, image_id: int, instances, image_size: int, skip_bad_images: bool):
    """(the image resized for the model, None), or (None, why it is left out): an unreadable file with
    --skip_bad_images (else one line), or a file whose size is not its annotations' (their masks would
    lie elsewhere: a resized copy, or a photograph turned by its EXIF orientation)."""
    image = open_or_skip(path, skip_bad_images)
    if image is None:
        return None, None
    info = instances.coco.imgs[image_id]
    if image.size != (info["width"], info["height"]):
        return None, f"{image.width}x{image.height} upright, annotated {info['width']}x{info['height']}"
    return catr.resize_longer_side(image, image_size), None


def generate_batches(model, paths: dict, pending: list, args, device, instances):
    """(image id, resized image or None, caption token ids or why it is left out) per image, --batch_size
    images at a time."""
    for start in range(0, len(pending), args.batch_size):
        opened = [(image_id, *open_annotated(paths[image_id], image_id, instances, model.image_size,
                                             args.skip_bad_images))
                  for image_id in pending[start: start + args.batch_size]]
        readable = [catr.preprocess(image).to(device) for _, image, _ in opened if image is not None]
        decoded = iter(catr.generate(model, readable, beam_size=args.beam, max_steps=args.max_steps,
                                     length_penalty=args.length_penalty))
        for image_id, image, excluded in opened:
            if image is None:
                yield image_id, None, excluded
            else:
                result = next(decoded)
                yield image_id, image, [caption_ids(result.ids, result.ended)]


def given_captions(paths: dict, pending: list, captions: dict, image_size: int, instances,
                   skip_bad_images: bool):
    for image_id in pending:
        image, excluded = open_annotated(paths[image_id], image_id, instances, image_size, skip_bad_images)
        if image is None:
            yield image_id, None, excluded
            continue
        yield image_id, image, [caption_ids(ids[1:-1]) for ids in captions[image_id]]


def report_exclusions(records: list) -> dict:
    """Warn of the images and words left out, each kind in one line naming some; their counts."""
    images = [f"{record['image_id']} ({record['excluded']})" for record in records if record.get("excluded")]
    words = [f"{word['word']} in {record['image_id']}" for record in records
             for word in record.get("empty_masks", ())]
    if images:
        warn(f"{len(images)} images are left out, their file's size not their annotations' ({some_names(images)})")
    if words:
        warn(f"{len(words)} words are not graded, their category's mask in the image is empty (a degenerate "
             f"polygon or a short run-length encoding: {some_names(words)})")
    return {"images_of_another_size": len(images), "words_with_empty_masks": len(words)}


def each_weights(args) -> list:
    """One set of flags per --weights file (the flags as given when there is none or one), each with
    its own --cache: several files of one report keep their results apart."""
    if not args.weights:
        return [args]
    runs = [argparse.Namespace(**{**vars(args), "weights": path}) for path in args.weights]
    base = cache_file(argparse.Namespace(**{**vars(args), "weights": None}))
    if len(runs) > 1 and base:
        for index, run in enumerate(runs):
            run.cache = str(Path(base).with_name(f"{Path(base).stem}.{index}{Path(base).suffix}"))
    return runs


def grade_images(args, methods, table, instances, tokenizer, captions, paths) -> tuple:
    """(the cached and new records of every image, unreadable images, the grader or None when every
    image was in the cache) for one captioner."""
    cache_path = cache_file(args)
    if not cache_path:
        warn("no --cache or --out_json: an interrupted run starts over")
    unreadable, grader = 0, None
    with results_cache(cache_path, settings_record(args, methods, table), "eval_grounding.py", "--cache",
                       "image_id", lambda record: is_record(record, methods),
                       "an image's image_id, captions and words, as it writes them") as cache:
        pending = [image_id for image_id in paths if image_id not in cache.items]
        done = f"{len(paths) - len(pending)} already in {cache_path}, " if cache_path else ""
        print(f"{len(paths)} images: {done}{len(pending)} to grade ({weights_description(args)}; "
              f"{'reference captions' if args.captions else 'generated captions'})")
        if pending:
            grader = make_grader(args, methods, table, instances, tokenizer)
            for image_id, image, ids in tqdm(caption_batches(grader, args, paths, pending, captions),
                                             total=len(pending), desc="grounding", unit="image",
                                             disable=args.no_progress):
                if image is None and ids is None:
                    unreadable += 1
                elif image is None:
                    cache.add({"image_id": image_id, "captions": [], "words": [], "excluded": ids})
                else:
                    cache.add(grader.grade(image_id, image, ids))
    return [cache.items[image_id] for image_id in paths if image_id in cache.items], unreadable, grader


def make_grader(args, methods, table, instances, tokenizer):
    device = resolve_device(args.device)
    model = load_captioner(args, device)
    if args.generate:
        check_beam(args, model, device)
    return Grader(model, methods, table, instances, tokenizer, device, not args.no_deletion, args.seed)


def caption_batches(grader, args, paths, pending, captions):
    if args.generate:
        return generate_batches(grader.model, paths, pending, args, grader.device, grader.instances)
    return given_captions(paths, pending, captions, grader.model.image_size, grader.instances,
                          args.skip_bad_images)


def sanity_check(grader, args, records, paths, captions) -> dict:
    """The cascading randomisation of the captioner (head, decoder layers from the top, then the encoder)
    on the words of the first --sanity_images graded images, each word teacher-forced as captioned.
    The uniform map has no order to correlate: it is left out."""
    chosen = [record["image_id"] for record in records if record["words"]][: args.sanity_images]
    items = [item for item in caption_batches(grader, args, paths, chosen, captions) if item[1] is not None]
    graded = {image_id: grader.words_to_grade(image_id, ids)[1] for image_id, _, ids in items}
    if sum(len(words) for words in graded.values()) < 2:
        warn("fewer than 2 graded words in the sanity check's images: no sanity check")
        return None

    def maps_of(model):  # the grader's model, re-drawn in place stage by stage
        maps = torch.stack([word["maps"] for image_id, image, ids in items
                            for word in grader.explain(image_id, image, ids, graded[image_id])[0]])
        return {method: maps[:, i] for i, method in enumerate(grader.methods) if method != "uniform"}

    stages = captioner_stages(grader.model)
    result = cascading_randomisation(grader.model, stages, maps_of, args.seed)
    return sanity_summary(result, verdict_stage(stages, "decoder"), args.resamples, args.seed)


def weights_report(args, records, methods, unreadable) -> tuple:
    """(the report of one captioner, its per-word measures and the words' categories)."""
    excluded = report_exclusions(records)
    records = [record for record in records if not record.get("excluded")]
    words = [word for record in records for word in record["words"]]
    if not words and not any(caption["named"] for record in records for caption in record["captions"]):
        raise UserError("no caption holds a word of the word table: nothing to grade")
    if not words and args.captions:
        raise UserError("no word could be graded: every object a caption names is absent from its image or "
                        "has an empty mask (see the warnings above)")
    summary = summarize(words, methods, FRACTIONS, args.resamples, args.seed) if words else {}
    per_item, strata = word_measures(words, methods, FRACTIONS) if words else ({}, None)
    layers = [m for m in methods if m.startswith("attention@")]
    compared = [m for m in methods if m not in BASELINES]
    report = {"weights": weights_description(args), "methods": summary, "words": len(words),
              "categories": len(set(word["category"] for word in words)), "images": len(records),
              "unreadable_images": unreadable, "left_out": excluded}
    if words:
        report["layers"] = leader(per_item, layers, "correctness", True, args.resamples, args.seed, strata)
        report["differences"] = pairwise_differences(per_item, compared, HIGHER_IS_BETTER, args.resamples,
                                                     args.seed, strata)
        probability = torch.tensor([100 * math.exp(word["log_prob"]) for word in words if "log_prob" in word])
        if len(probability) == len(words):
            value, bounds = intervals({"p": probability}, args.resamples, args.seed, strata)["p"]
            report["word_probability"], report["word_probability_ci95"] = round(value, 2), [round(b, 2) for b in bounds]
            per_item["word_probability"] = probability
    if not args.captions:
        report["hallucination"] = hallucination_rates(records)
    return report, per_item, strata


def weights_series(reports: list, measured: list, strata, args) -> dict:
    """Across captioners graded on the same words: each measure's paired difference from the one whose
    words are most probable, and the rank correlation between word probability and each measure."""
    probability = torch.stack([m["word_probability"] for m in measured])
    best = int(torch.stack([estimate(p, strata) for p in probability]).argmax())
    probability_replicates = resample_means(probability, args.resamples, args.seed, strata)
    rank_correlation = {}
    for method in reports[0]["methods"]:
        for measure, better in HIGHER_IS_BETTER.items():
            if measure not in measured[0][method]:
                continue
            values = torch.stack([m[method][measure] for m in measured])
            replicates = resample_means(values, args.resamples, args.seed, strata)
            point = estimates_rank_correlation(estimate(probability, strata), estimate(values, strata))
            bounds = percentile_interval(estimates_rank_correlation(probability_replicates.T, replicates.T))
            rank_correlation.setdefault(method, {})[measure] = {
                "spearman": round(float(point), 3), "spearman_ci95": [round(float(b), 3) for b in bounds]}
            compared = summarize_measures({**{k: {measure: values[k]} for k in range(len(measured))},
                                           "best": {measure: values[best]}}, {measure: better}, "best",
                                          args.resamples, args.seed, strata)
            for k, report in enumerate(reports):
                if k != best:
                    report.setdefault("against_most_probable", {}).setdefault(method, {})[measure] = \
                        compared[k]["against_best"][measure]
    return {"rank_correlation": rank_correlation, "most_probable": reports[best]["weights"]}


def main(argv=None) -> None:
    args = parse_args(argv)
    methods = check_arguments(args)
    tokenizer = catr.load_tokenizer()
    table = load_word_table(args.words, tokenizer.split_words)
    instances = load_instances(args.instances)
    check_table(table, instances)
    captions = caption_source(args, instances)
    if not args.generate:
        captions = encode_captions(captions, tokenizer, args.captions or args.results)
        check_captions_name_objects(captions, table, tokenizer)
    paths = images_to_grade(instances, captions, Path(args.img_dir), args.limit)
    reports, measured, strata = [], [], None
    for run in each_weights(args):
        records, unreadable, grader = grade_images(run, methods, table, instances, tokenizer, captions, paths)
        report, per_item, strata = weights_report(run, records, methods, unreadable)
        print(f"{report['words']} words of {report['categories']} categories graded in {report['images']} images "
              f"({report['weights']}); intervals: bootstrap 95% over the words, drawn within each category")
        print(markdown_table(report["methods"]))
        if "layers" in report and report["layers"]["next"]:
            lead = report["layers"]
            print(f"best layer by correctness: {lead['best']}, ahead of {lead['next']} by {lead['lead']:.1f} "
                  f"[{lead['lead_ci95'][0]:.1f}, {lead['lead_ci95'][1]:.1f}] points: "
                  f"{'it beats it' if lead['verdict'] == 'beats' else 'no clear difference'}")
        if "word_probability" in report:
            print(f"teacher-forced probability of the graded words: "
                  f"{interval_text(report['word_probability'], report['word_probability_ci95'])}%")
        if "hallucination" in report:
            rates = report["hallucination"]
            print(f"CHAIR_i {rates['chair_i']}% of {rates['object_mentions']} object mentions, CHAIR_s "
                  f"{rates['chair_s']}% of {rates['captions']} captions")
        if args.sanity_images and report["words"]:
            grader = grader or make_grader(run, methods, table, instances, tokenizer)
            report["sanity"] = sanity_check(grader, run, records, paths, captions)
            if report["sanity"]:
                print("sanity check: Spearman correlation with the trained captioner's word maps as the weights "
                      "are re-drawn:")
                print(sanity_table(report["sanity"]))
        reports.append(report)
        measured.append(per_item)
    first = reports[0]
    result = {**first, "mode": "reference" if args.captions else "generated", "fractions": list(FRACTIONS),
              "pointing_tolerance": {"fixed_px": POINTING_TOLERANCE,
                                     "scaled": "half a feature cell: 0.5 x max(H / h, W / w) image pixels"},
              "bootstrap": {"resamples": args.resamples, "level": 0.95, "seed": args.seed,
                            "over": "words, drawn within each category"},
              "word_table": str(table.path), "date": datetime.date.today().isoformat()}
    if len(reports) > 1:
        result["checkpoints"] = reports
        if all("word_probability" in m for m in measured):
            result.update(weights_series(reports, measured, strata, args))
            print("rank correlation (Spearman) between the words' probability and each measure, over the captioners:")
            for method, row in result["rank_correlation"].items():
                print(f"  {method}: " + ", ".join(f"{m} {v['spearman']:+.2f} [{v['spearman_ci95'][0]:+.2f}, "
                                                   f"{v['spearman_ci95'][1]:+.2f}]" for m, v in row.items()))
    title = f"Grounding, {first['words']} words of {first['categories']} categories, {first['weights']}"
    write_report(result, args.out_json, args.out_png, lambda: grounding_figure(first["methods"], FRACTIONS, title))


if __name__ == "__main__":
    run_main(main)
