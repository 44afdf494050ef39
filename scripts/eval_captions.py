"""Caption COCO images with CATR and score captions as COCO's caption evaluation does.

Captioning (--out_results): caption every image of the annotations file (COCO's captions_val2017.json
format) that is in --img_dir, write a COCO results file ([{"image_id", "caption"}], sorted by image
id) after every batch, then score the images of this run. It resumes: image ids already in
--out_results are skipped, so an interrupted run picks up where it stopped. The settings that make
the captions (the weights by their content, the image folder, the annotations file by its content,
--beam, --length_penalty, --max_steps) are kept beside it in RESULTS.settings.json (RESULTS without
its suffix), written with the first captions; a resume with other settings, or of captions without
that record, is refused, and a file of that name that is no such record is never overwritten.
A hidden .RESULTS.lock keeps a second captioning of the same file out while one runs. An image that
cannot be read stops the run (the captions made so far are kept), or with --skip_bad_images is left out. --limit N takes
the first N annotated images found, by image id (the same N on every run); only those are scored.
Scoring (--results): score any results file, ours or another captioner's, against the annotations.
The images in the results file are scored, or with --limit N the first N of them by image id.
--baseline_from TRAIN_ANNOTATIONS also scores the most frequent caption of a training split given to
every scored image: a captioner that ignores its images, to compare with.

Metrics: BLEU-1..4, ROUGE-L and CIDEr-D (reported as CIDEr, as COCO does), computed by pycocoevalcap's
scorers. Captions and references are tokenised in Python as COCO's evaluation does (its Java PTB
tokenizer is not needed): {tokenization}.
METEOR and SPICE need Java and are left out. The last line printed is one JSON object with each metric
and the number of images scored.

    python scripts/eval_captions.py --annotations annotations/captions_val2017.json --img_dir val2017/ \\
        --version v2 --out_results results/v2_greedy.json
    python scripts/eval_captions.py --annotations annotations/captions_val2017.json \\
        --results results/v2_greedy.json
"""
import argparse
import json
from pathlib import Path

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main
from data.io import UserError, warn, write_text_atomic
from tqdm import tqdm

import catr
from catr.cli import (add_search_arguments, add_skip_argument, add_weight_arguments, check_beam,
                      check_search_arguments, load_captioner, search_description, weights_description,
                      weights_identity)
from catr.pipeline import caption_files
from catr.scores import METRICS, TOKENIZATION, most_frequent_caption, score_captions
from data.coco_captions import load_annotations, load_results, write_results
from data.outputs import check_output_file
from data.resumable import file_identity, folder_identity, held, refuse_other_settings
from models.training.runtime import resolve_device


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.replace("{tokenization}", TOKENIZATION),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", required=True, metavar="FILE",
                        help="COCO caption annotations, e.g. annotations/captions_val2017.json")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out_results", metavar="FILE",
                      help="caption the images and write (or complete) this COCO results file, then score it")
    mode.add_argument("--results", metavar="FILE", help="only score this COCO results file")
    parser.add_argument("--img_dir", metavar="DIR", help="the annotated images, e.g. val2017/ (captioning)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="caption and score only the first N annotated images found, by image id; with "
                             "--results, score only its first N images by image id (default: all)")
    parser.add_argument("--baseline_from", metavar="FILE",
                        help="also score the most frequent caption of these (training) annotations given to "
                             "every scored image; its scores print beside the captioner's and go under "
                             "'baseline' in the JSON line")
    add_skip_argument(parser)
    add_weight_arguments(parser)
    add_search_arguments(parser, batch_size=8)
    return parser.parse_args(argv)


def images_to_caption(annotations, img_dir: Path, limit) -> dict:
    """Image id -> path of the annotated images in `img_dir`, the first `limit` by id."""
    if not img_dir.is_dir():
        raise UserError(f"folder not found: {img_dir}")
    found = {image_id: img_dir / name for image_id, name in sorted(annotations.file_names.items())
             if (img_dir / name).is_file()}
    total = len(annotations.file_names)
    if not total:
        raise UserError(f"{annotations.path}: no 'images' entry has the id of a captioned image (captions for "
                        f"{len(annotations.references)} ids, such as {min(annotations.references)}): nothing to caption")
    if not found:
        example = next(iter(annotations.file_names.values()))
        raise UserError(f"{img_dir} holds none of the {total} images of {annotations.path} (such as {example})")
    if len(found) < total:
        warn(f"{img_dir} holds {len(found)} of the {total} annotated images; the others are left out")
    return dict(list(found.items())[:limit])


def settings_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.settings.json")


def caption_settings(args) -> dict:
    """What decides the captions, the inputs by what identifies them (data.resumable): the weights, the
    images and the annotations that name them, and the search (not the batch size, nor the device)."""
    return {"weights": weights_identity(args), "img_dir": folder_identity(args.img_dir),
            "annotations": file_identity(args.annotations), "beam": args.beam,
            "length_penalty": args.length_penalty if args.beam > 1 else None, "max_steps": args.max_steps}


def check_settings(out: Path, settings: dict, has_captions: bool) -> None:
    """Refuse to complete `out` with settings other than those it was begun with, or captions whose
    settings are unknown (they may be another model's); and never overwrite a file beside it that is
    not its settings record."""
    path = settings_path(out)
    recorded = None
    if path.exists():
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            pass
        if not (isinstance(recorded, dict) and set(recorded) == set(settings)):
            raise UserError(f"{path} is not the settings record of eval_captions.py that belongs beside {out}, "
                            "and would be overwritten: move it away, or give another --out_results")
    if not has_captions:  # without captions there is nothing the settings must match
        return
    if recorded is None:
        raise UserError(f"{out} holds captions but no record of the settings they were made with ({path}), so "
                        "they may be another model's: delete it to caption again, or score it as it is with "
                        "--results")
    refuse_other_settings(recorded, settings, out, path, "another --out_results")


def caption_images(args, annotations) -> dict:
    """Caption what --out_results lacks; returns the captions of this run's images, image id -> caption."""
    out = Path(args.out_results)
    paths = images_to_caption(annotations, Path(args.img_dir), args.limit)
    with held(out, "eval_captions.py", "--out_results"):
        captions = load_results(out, annotations) if out.exists() else {}
        settings = caption_settings(args)
        check_settings(out, settings, bool(captions))
        unreadable = caption_pending(args, annotations, paths, captions, out, settings)
    others = len(captions) - sum(image_id in captions for image_id in paths)
    if others:
        print(f"{out} also holds {others} captions of images outside this run (--limit or --img_dir); "
              f"scoring the {len(paths)} of this run")
    if unreadable:
        warn(f"{unreadable} images could not be read and are left out (--skip_bad_images)")
    return {image_id: captions[image_id] for image_id in paths if image_id in captions}


def caption_pending(args, annotations, paths: dict, captions: dict, out: Path, settings: dict) -> int:
    """Caption the images of `paths` that `captions` lacks, into `captions` and `out` after every batch
    (`settings` beside it with the first); an image listed under several ids is captioned once for all
    of them. Returns how many could not be read (--skip_bad_images)."""
    pending = [image_id for image_id in paths if image_id not in captions]
    print(f"{len(paths)} images: {len(paths) - len(pending)} already in {out}, {len(pending)} to caption "
          f"({weights_description(args)}, {search_description(args)})")
    if not pending:
        return 0
    image_ids = {}
    for image_id in pending:
        image_ids.setdefault(paths[image_id], []).append(image_id)
    # Same-size images side by side, so that batches are decoded whole (see catr.generate).
    files = sorted(image_ids, key=lambda path: (annotations.sizes.get(image_ids[path][0], (0, 0)), image_ids[path][0]))
    device = resolve_device(args.device)
    model = load_captioner(args, device)
    check_beam(args, model, device)
    tokenizer = catr.load_tokenizer()
    unreadable = 0
    written = bool(captions)
    with tqdm(total=len(files), desc="captioning", unit="image") as progress:
        for batch in caption_files(model, files, args.batch_size, args.beam, args.length_penalty, args.max_steps,
                                   device, args.skip_bad_images):
            for path, _, decoded in batch:
                if decoded is None:
                    unreadable += len(image_ids[path])
                else:
                    captions.update(dict.fromkeys(image_ids[path], tokenizer.decode(decoded.ids)))
            if not written:  # the settings go with the first captions
                write_text_atomic(settings_path(out), json.dumps(settings, indent=1) + "\n")
                written = True
            write_results(out, captions)
            progress.update(len(batch))
    return unreadable


def first_results(captions: dict, limit, path) -> dict:
    """The first `limit` captions of a results file by image id (all of them without --limit)."""
    if limit is None or limit >= len(captions):
        return captions
    print(f"--limit {limit}: scoring the first {limit} of the {len(captions)} images of {path}, by image id")
    return {image_id: captions[image_id] for image_id in sorted(captions)[:limit]}


def main(argv=None) -> None:
    args = parse_args(argv)
    check_search_arguments(args)
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    if args.out_results:
        if args.img_dir is None:
            raise UserError("captioning needs --img_dir, the folder of the annotated images")
        inputs = [args.annotations, args.img_dir]
        out = check_output_file(args.out_results, "--out_results", inputs)
        check_output_file(settings_path(out), "--out_results", inputs)
    annotations = load_annotations(args.annotations)
    baseline_caption = most_frequent_caption(load_annotations(args.baseline_from).references) \
        if args.baseline_from else None
    if args.results:
        captions = first_results(load_results(args.results, annotations), args.limit, args.results)
    else:
        captions = caption_images(args, annotations)
    scores = score_captions(annotations.references, captions)
    record = {**scores, "images": len(captions)}
    print(f"{len(captions)} of {len(annotations.references)} annotated images scored")
    if baseline_caption is None:
        for metric in METRICS:
            print(f"  {metric:8s} {scores[metric]:.4f}")
    else:
        baseline = score_captions(annotations.references, dict.fromkeys(captions, baseline_caption))
        record["baseline"] = {**baseline, "caption": baseline_caption}
        print(f"  {'':8s} {'captioner':>9s} {'baseline':>9s}   (baseline: \"{baseline_caption}\" for every image)")
        for metric in METRICS:
            print(f"  {metric:8s} {scores[metric]:9.4f} {baseline[metric]:9.4f}")
    print(json.dumps(record))


if __name__ == "__main__":
    run_main(main)
