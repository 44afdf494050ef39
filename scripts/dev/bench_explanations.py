"""What a batch of relevancy maps costs next to a training step (forward plus backward) of the same batch.

Random weights and one random batch. The relevancy maps run as `p1_vis_attention.py --method relevancy`
and `eval_explanations.py` compute them: eval mode, explicit attention, one forward and one backward
pass of the summed target logits, down to the attention only. The training step runs as training does:
train mode, fused attention, cross-entropy, a backward pass to every weight (no optimizer step). The
two take turns, step by step. The last line printed is one JSON object.

  python scripts/dev/bench_explanations.py --model tiny --batch_size 32
"""
import argparse
import json
import statistics
import sys

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main
from data.io import UserError
import torch
import torch.nn.functional as F

from models.attention import set_attention
from benchlib import random_batch, random_model, record_header, time_alternating
from models.explain.maps import relevancy_maps
from models.training.runtime import resolve_device
from models.vit import MODEL_NAMES, check_model_name, native_image_size


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tiny", metavar="NAME",
                   help=f"model name, one of: {', '.join(MODEL_NAMES)} (default %(default)s)")
    p.add_argument("--image_size", type=int, default=None, metavar="N",
                   help="input size in pixels (default: the model's native size)")
    p.add_argument("--batch_size", type=int, default=32, metavar="N", help="images per step (default %(default)s)")
    p.add_argument("--steps", type=int, default=10, metavar="N", help="timed steps of each (default %(default)s)")
    p.add_argument("--warmup", type=int, default=2, metavar="N", help="untimed steps of each first (default %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default %(default)s)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    check_model_name(args.model)
    for flag in ("batch_size", "steps", "image_size"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UserError(f"--{flag} must be at least 1, not {value}")
    if args.warmup < 0:
        raise UserError(f"--warmup must be 0 or more, not {args.warmup}")
    device = resolve_device(args.device)
    image_size = args.image_size or native_image_size(args.model)
    model = set_attention(random_model(args.model, image_size, device), "fast")
    images, labels = random_batch(args.batch_size, image_size, model.fc.out_features, device)

    def training_step():
        model.train()
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()

    def relevancy_step():
        relevancy_maps(model, images)

    seconds = time_alternating({"relevancy": relevancy_step, "train_step": training_step},
                               args.steps, args.warmup, device)
    median = {name: statistics.median(times) for name, times in seconds.items()}
    record = {
        **record_header("explanations", "scripts/dev/bench_explanations.py",
                        argv if argv is not None else sys.argv[1:], device),
        "model": args.model,
        "image_size": image_size,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "relevancy_s_median": round(median["relevancy"], 5),
        "train_step_s_median": round(median["train_step"], 5),
        "relevancy_s": [round(t, 5) for t in seconds["relevancy"]],
        "train_step_s": [round(t, 5) for t in seconds["train_step"]],
        "relevancy_over_train_step": round(median["relevancy"] / median["train_step"], 3),
        "relevancy_over_train_step_best": round(min(seconds["relevancy"]) / min(seconds["train_step"]), 3),
    }
    print(f"{args.model} at {image_size} px, batch {args.batch_size}, {record['device_name']} "
          f"(torch {torch.__version__}, load average {record['load_avg_1min']})")
    print(f"relevancy maps: {record['relevancy_s_median']:.4g} s per batch (median of {args.steps}); "
          f"training step: {record['train_step_s_median']:.4g} s")
    print(f"relevancy / training step: {record['relevancy_over_train_step']:.2f}x "
          f"({record['relevancy_over_train_step_best']:.2f}x between the fastest steps)")
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    run_main(main)
