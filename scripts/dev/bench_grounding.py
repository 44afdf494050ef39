"""Speed of word relevancy and of the grounding report, against one teacher-forced training pass.

For each configuration (--configs; random weights, seed 0) and a random 299x224 image (the size a
640x480 COCO image becomes) with a random caption of --tokens tokens ([SEP] last):
  - forward+backward: one teacher-forced forward pass of the caption and the backward pass of its
    summed log-likelihood to every parameter, as a training step computes it;
  - one token's relevancy: the same forward, the backward of one token's logit to the attention
    weights, and the rules (what each token would cost on its own);
  - relevancy, all tokens: `catr.relevancy.word_relevancy`, every token's map in one batched backward;
  - attnlrp and legrad, all tokens: `catr.token_methods.token_maps`, every token's map (attnlrp: one
    batched backward to the encoder's input cells; legrad: one backward per decoder layer).
After an untimed warm-up the five alternate --repeats times and each keeps its fastest (other work on
a shared machine only adds time). Then eval_grounding's grading of one image in seconds: --captions
captions of 13 tokens, each naming the image's one object once, every method, the deletion test
included.
The last line printed is one JSON object.

  python scripts/dev/bench_grounding.py --configs tiny catr --device cpu
"""
import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main
from data.io import UserError
import torch
from PIL import Image

import catr
from benchlib import device_name, synchronize, time_alternating
from catr.relevancy import decoder_inputs, explain_captions, word_relevancy
from catr.token_methods import TOKEN_METHODS, token_maps
from models.training.runtime import resolve_device


HEIGHT, WIDTH = 224, 299


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["tiny", "catr"], choices=sorted(catr.CONFIGS),
                        help="model configurations (default: %(default)s)")
    parser.add_argument("--tokens", type=int, default=13, help="caption tokens, [SEP] included (default %(default)s)")
    parser.add_argument("--captions", type=int, default=5, help="captions per image when grading (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (default %(default)s)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default %(default)s)")
    return parser.parse_args(argv)


def training_pass(model, image, ids):
    logits = model(image[None], decoder_inputs(ids), None)
    (-logits.log_softmax(dim=-1).gather(-1, ids[..., None]).sum()).backward()
    model.zero_grad(set_to_none=True)


def grading_seconds(model, config: str, args, device) -> float:
    """Seconds eval_grounding's Grader takes for one image whose captions all name its object."""
    from catr.grounding import Grader, caption_ids
    from data.coco_instances import load_instances
    from data.object_words import load_word_table

    folder = Path(tempfile.mkdtemp())
    (folder / "instances.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "1.jpg", "width": 640, "height": 480}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[100, 100, 400, 100, 400, 300]]}],
        "categories": [{"id": 1, "name": "dog"}]}))
    instances = load_instances(folder / "instances.json")
    layers = catr.CONFIGS[config].dec_layers
    methods = [f"attention@{layer}" for layer in range(layers)] + [*TOKEN_METHODS, "uniform", "random"]
    tokenizer = catr.load_tokenizer()
    table = load_word_table(None, tokenizer.split_words)
    grader = Grader(model, methods, table, instances, tokenizer, device)
    caption = caption_ids(tokenizer.encode("a small brown dog sitting on the green grass near a fence")[1:-1])
    captions = [caption] * args.captions
    image = Image.new("RGB", (WIDTH, HEIGHT), (120, 90, 60))
    start = time.perf_counter()
    record = grader.grade(1, image, captions)
    synchronize(device)
    assert len(record["words"]) == args.captions
    return time.perf_counter() - start


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.tokens < 2 or args.repeats < 1 or args.captions < 1:
        raise UserError("--tokens must be at least 2, --repeats and --captions at least 1")
    device = resolve_device(args.device)
    results = {}
    for config in args.configs:
        torch.manual_seed(0)
        model = catr.build_model(config).to(device).eval()
        image = torch.randn(3, HEIGHT, WIDTH, device=device)
        ids = torch.randint(1000, 30000, (1, args.tokens), device=device)
        ids[0, -1] = catr.SEP_ID
        one = ids.clone()
        one[0, 1:] = 0  # the first token only: one target in the backward pass
        seconds = time_alternating({
            "forward_backward": lambda: training_pass(model, image, ids),
            "relevancy_one_token": lambda: explain_captions(model, image, one[:, :1]),
            "relevancy_all_tokens": lambda: word_relevancy(model, image[None], ids),
            "attnlrp_all_tokens": lambda: token_maps("attnlrp", model, image[None], ids),
            "legrad_all_tokens": lambda: token_maps("legrad", model, image[None], ids),
        }, args.repeats, warmup=1, device=device)
        best = {name: round(min(values), 4) for name, values in seconds.items()}
        best["all_tokens_over_forward_backward"] = round(best["relevancy_all_tokens"] / best["forward_backward"], 2)
        for method in ("attnlrp", "legrad"):
            best[f"{method}_over_forward_backward"] = round(best[f"{method}_all_tokens"] / best["forward_backward"], 2)
        best["grading_seconds_per_image"] = round(grading_seconds(model, config, args, device), 3)
        results[config] = best
        print(f"{config}: {best}", flush=True)
    print(json.dumps({"configs": results, "tokens": args.tokens, "captions_per_image": args.captions,
                      "image": f"{WIDTH}x{HEIGHT}", "device": device_name(device),
                      "date": datetime.date.today().isoformat(), "load_avg_1min": round(os.getloadavg()[0], 2),
                      "command": " ".join(["scripts/dev/bench_grounding.py", *(argv or sys.argv[1:])])}))


if __name__ == "__main__":
    run_main(main)
