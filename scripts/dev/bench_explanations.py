"""What a batch of class-specific maps costs next to one forward plus backward pass of the same batch.

Random weights and one random batch. The maps run as `p1_vis_attention.py --method M` and
`eval_explanations.py` compute them (`models.explain.methods.compute_maps`, each image's predicted
class): relevancy and legrad in eval mode with explicit attention, attnlrp under its LRP rules. Two
baselines of one forward and one backward pass each:
- the training step, as training runs it: train mode, fused attention, cross-entropy, a backward pass
  to every weight (no optimizer step);
- the input gradient: eval mode, fused attention, the predicted logits summed, a backward pass to the
  pixels only (the least a gradient map can cost).
All take turns, step by step (benchlib's timing loop). The targets, against the training step: attnlrp
at most 2x, relevancy and legrad at most 3x. The last line printed is one JSON object.

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
from benchlib import (add_step_arguments, check_step_arguments, random_batch, random_model, record_header,
                      time_alternating)
from models.explain.methods import compute_maps
from models.training.runtime import resolve_device
from models.vit import native_image_size

TARGETS = {"relevancy": 3.0, "attnlrp": 2.0, "legrad": 3.0}  # at most this many training steps


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_step_arguments(p, "tiny", batch_size=32, steps=10, warmup=2, device="cpu")
    p.add_argument("--methods", nargs="+", choices=tuple(TARGETS), default=list(TARGETS), metavar="NAME",
                   help=f"the maps timed, any of: {' '.join(TARGETS)} (default: all)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    check_step_arguments(args)
    if len(set(args.methods)) != len(args.methods):
        raise UserError("a method is listed twice in --methods")
    device = resolve_device(args.device)
    image_size = args.image_size or native_image_size(args.model)
    model = set_attention(random_model(args.model, image_size, device), "fast")
    images, labels = random_batch(args.batch_size, image_size, model.fc.out_features, device)

    def training_step():
        model.train()
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()

    def input_gradient():
        model.eval()
        pixels = images.detach().requires_grad_(True)
        logits = model(pixels)
        torch.autograd.grad(logits.amax(dim=-1).sum(), pixels)

    steps = {"train_step": training_step, "input_gradient": input_gradient}
    steps.update({method: (lambda method=method: compute_maps(method, model, images)) for method in args.methods})
    seconds = time_alternating(steps, args.steps, args.warmup, device)
    median = {name: statistics.median(times) for name, times in seconds.items()}
    record = {
        **record_header("explanations", "scripts/dev/bench_explanations.py",
                        argv if argv is not None else sys.argv[1:], device),
        "model": args.model,
        "image_size": image_size,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "methods": args.methods,
    }
    for name in steps:
        record[f"{name}_s_median"] = round(median[name], 5)
        record[f"{name}_s"] = [round(t, 5) for t in seconds[name]]
    for method in args.methods:
        record[f"{method}_over_train_step"] = round(median[method] / median["train_step"], 3)
        record[f"{method}_over_train_step_best"] = round(min(seconds[method]) / min(seconds["train_step"]), 3)
        record[f"{method}_over_input_gradient"] = round(median[method] / median["input_gradient"], 3)
    print(f"{args.model} at {image_size} px, batch {args.batch_size}, {record['device_name']} "
          f"(torch {torch.__version__}, load average {record['load_avg_1min']})")
    print(f"training step: {record['train_step_s_median']:.4g} s, input gradient: "
          f"{record['input_gradient_s_median']:.4g} s per batch (medians of {args.steps})")
    for method in args.methods:
        ratio = record[f"{method}_over_train_step"]
        print(f"{method} maps: {record[f'{method}_s_median']:.4g} s; {method} / training step: {ratio:.2f}x "
              f"({record[f'{method}_over_train_step_best']:.2f}x between the fastest steps; target at most "
              f"{TARGETS[method]:g}x: {'met' if ratio <= TARGETS[method] else 'not met'}), "
              f"{record[f'{method}_over_input_gradient']:.2f}x the input gradient")
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    run_main(main)
