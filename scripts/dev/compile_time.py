"""Cold compile time of a ViT's forward and backward: each transformer block compiled (what `--compile`
does, models.training.runtime.compile_blocks) against the whole model compiled as one graph.

Inductor's caches are off, so every compile is cold. Run each region in its own process, so that
neither inherits a compiler the other has warmed up. Prints the compile time (the first step's time
less a steady step's), the graphs dynamo built and, as the last line, one JSON object.

    python scripts/dev/compile_time.py --model tiny --batch_size 32 --device cpu --region blocks
    python scripts/dev/compile_time.py --model tiny --batch_size 32 --device cpu --region model
"""
import argparse
import json
import statistics
import sys

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main

import torch
import torch._dynamo
import torch._inductor.config
import torch.nn.functional as F

from benchlib import random_batch, random_model, record_header, timed
from models.attention import set_attention
from models.training.runtime import compile_blocks, resolve_device
from models.vit import MODEL_NAMES, native_image_size

REGIONS = ("blocks", "model")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=MODEL_NAMES, default="tiny", help="(default: %(default)s)")
    parser.add_argument("--batch_size", type=int, default=32, help="(default: %(default)s)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if present)")
    parser.add_argument("--region", choices=REGIONS, required=True,
                        help="blocks: each block compiled, one graph shared by all; model: the whole model")
    parser.add_argument("--steps", type=int, default=5, help="steady steps after the first (default: %(default)s)")
    parser.add_argument("--backend", default="inductor", help="torch.compile backend (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    device = resolve_device(args.device)
    image_size = native_image_size(args.model)
    model = set_attention(random_model(args.model, image_size, device), "fast").train()
    runner = (compile_blocks(model, backend=args.backend) if args.region == "blocks"
              else torch.compile(model, backend=args.backend))
    images, labels = random_batch(args.batch_size, image_size, model.fc.out_features, device)

    def step():
        F.cross_entropy(runner(images), labels).backward()

    with torch._inductor.config.patch(force_disable_caches=True):  # a cold compile, whatever ran before
        first = timed(step, device)[1]
        steady = statistics.median(timed(step, device)[1] for _ in range(args.steps))
    counters = torch._dynamo.utils.counters
    record = {
        **record_header("compile", "scripts/dev/compile_time.py", argv, device),
        "model": args.model, "image_size": image_size, "batch_size": args.batch_size, "region": args.region,
        "backend": args.backend, "blocks": len(model.transformer.blocks),
        "graphs": counters["stats"]["unique_graphs"], "frames_compiled": counters["frames"]["ok"],
        "calls_traced": counters["stats"]["calls_captured"],  # one block's, or the whole model's
        "first_step_s": round(first, 3), "step_s_median": round(steady, 4), "compile_s": round(first - steady, 3),
    }
    print(f"{args.model} at {image_size} px, batch {args.batch_size}, forward + backward, {args.backend}, "
          f"region {args.region}: {record['graphs']} graph(s) of {record['calls_traced']} calls "
          f"for {record['blocks']} blocks")
    print(f"compiling: {record['compile_s']:.1f} s (first step {first:.2f} s, steady step {steady:.3g} s)")
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    run_main(main)
