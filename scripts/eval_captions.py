"""Caption COCO images with CATR and score captions as COCO's caption evaluation does.

Captioning (--out_results): caption every image of the annotations file (COCO's captions_val2017.json
format) that is in --img_dir, write a COCO results file ([{"image_id", "caption"}], sorted by image
id) after every batch, then score it. It resumes: image ids already in --out_results are skipped, so
an interrupted run picks up where it stopped. --limit N takes the first N annotated images found,
by image id (the same N on every run).
Scoring (--results): score any results file, ours or another captioner's, against the annotations.
Only the images in the results file are scored.

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
from data.entry import run_main  # first: Ctrl-C during the slow imports below is one line
from data.io import UserError, warn
from tqdm import tqdm

import catr
from catr.cli import (add_search_arguments, add_weight_arguments, check_search_arguments,
                      load_captioner, search_description, weights_description)
from catr.pipeline import caption_files
from catr.scores import METRICS, TOKENIZATION, score_captions
from data.coco_captions import load_annotations, load_results, write_results
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
                        help="caption only the first N annotated images found, by image id")
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
    if not found:
        example = next(iter(annotations.file_names.values()))
        raise UserError(f"{img_dir} holds none of the {total} images of {annotations.path} (such as {example})")
    if len(found) < total:
        warn(f"{img_dir} holds {len(found)} of the {total} annotated images; the others are left out")
    return dict(list(found.items())[:limit])


def caption_images(args, annotations) -> dict:
    """Caption what --out_results lacks; returns all its captions, image id -> caption."""
    out = Path(args.out_results)
    if args.img_dir is None:
        raise UserError("captioning needs --img_dir, the folder of the annotated images")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    paths = images_to_caption(annotations, Path(args.img_dir), args.limit)
    captions = load_results(out, annotations) if out.exists() else {}
    # Same-size images side by side, so that batches are decoded whole (see catr.generate).
    pending = sorted((image_id for image_id in paths if image_id not in captions),
                     key=lambda image_id: (annotations.sizes.get(image_id, (0, 0)), image_id))
    print(f"{len(paths)} images: {len(paths) - len(pending)} already in {out}, {len(pending)} to caption "
          f"({weights_description(args)}, {search_description(args)})")
    if not pending:
        return captions
    device = resolve_device(args.device)
    model = load_captioner(args, device)
    tokenizer = catr.load_tokenizer()
    image_ids = {paths[image_id]: image_id for image_id in pending}
    unreadable = 0
    with tqdm(total=len(pending), desc="captioning", unit="image") as progress:
        for batch in caption_files(model, [paths[image_id] for image_id in pending], args.batch_size, args.beam,
                                   args.length_penalty, args.max_steps, device):
            for path, _, decoded in batch:
                if decoded is None:
                    unreadable += 1
                else:
                    captions[image_ids[path]] = tokenizer.decode(decoded.ids)
            write_results(out, captions)
            progress.update(len(batch))
    if unreadable:
        raise UserError(f"{unreadable} images could not be read (see the warnings above); {out} holds the "
                        f"others, and a rerun retries only those")
    return captions


def main(argv=None) -> None:
    args = parse_args(argv)
    check_search_arguments(args)
    annotations = load_annotations(args.annotations)
    if args.results:
        captions = load_results(args.results, annotations)
    else:
        captions = caption_images(args, annotations)
    scores = score_captions(annotations.references, captions)
    print(f"{len(captions)} of {len(annotations.references)} annotated images scored")
    for metric in METRICS:
        print(f"  {metric:8s} {scores[metric]:.4f}")
    print(json.dumps({**scores, "images": len(captions)}))


if __name__ == "__main__":
    run_main(main)
