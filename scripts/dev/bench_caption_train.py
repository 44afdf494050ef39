"""Training-step time of small CATR configurations on the CPU: what a demo-sized captioner can afford.

One teacher-forced step (forward, cross-entropy over the 30,522-word head, backward, AdamW) on a
random batch of --batch_size images and captions of --tokens tokens drawn from --words word pieces (a
small caption set's vocabulary), for each variant:
  - trained: the reference's rule, ResNet layer2..layer4 trained with the rest;
  - narrow:  the same with a narrower ResNet (Bottleneck expansion 1: 64..512 output channels
             instead of 256..2048), output stride still 16;
  - cached:  a frozen backbone whose features were computed once: the step starts at input_proj;
  - closed:  cached, and the vocabulary closed to the captions' word pieces (train_captioner.py
             --closed_vocabulary): the head's product and softmax over those rows only.
Each at every --sizes side. Untimed warm-up, then the variants alternate --repeats times (the
benchmarks' one timing loop) and each keeps its fastest step: on a shared machine other work only
adds time. The last line is JSON.

  python scripts/dev/bench_caption_train.py --sizes 96 128 --batch_size 32
"""
import argparse
import contextlib
import json
import sys
from dataclasses import replace

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main
import torch

from benchlib import record_header, time_alternating
from catr.captioner import CONFIGS, build_model, close_vocabulary, open_output_ids
from catr.tokenizer import SEP_ID
from catr.training import caption_step, parameter_groups, set_trainable

VARIANTS = ("trained", "narrow", "cached", "closed")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="tiny", help="(default %(default)s)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 128], help="image sides (default 96 128)")
    parser.add_argument("--batch_size", type=int, default=32, help="(default %(default)s)")
    parser.add_argument("--tokens", type=int, default=10, help="caption length with [CLS] and [SEP] (default 10)")
    parser.add_argument("--words", type=int, default=32,
                        help="distinct word pieces of the captions (default %(default)s, about the synthetic set's)")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per variant (default %(default)s)")
    return parser.parse_args(argv)


def make_step(variant: str, config: str, size: int, batch_size: int, tokens: int, words: int):
    """A function running one training step of `variant` on a fixed random batch."""
    cfg = CONFIGS[config]
    model = build_model(replace(cfg, resnet_expansion=1) if variant == "narrow" else cfg)
    cached = variant in ("cached", "closed")
    set_trainable(model, freeze_backbone=cached)
    model.train()
    images = torch.randint(0, 256, (batch_size, 3, size, size), dtype=torch.uint8)
    pixel_mask = torch.zeros(batch_size, size, size, dtype=torch.bool)
    if cached:
        with torch.no_grad():
            images, pixel_mask = model.backbone[0](images.float() / 127.5 - 1, pixel_mask)
    vocabulary = torch.arange(1000, 1000 + words)
    ids = vocabulary[torch.randint(0, words, (batch_size, tokens))]
    if variant == "closed":
        close_vocabulary(model, [*vocabulary.tolist(), SEP_ID])
    batch = (images, pixel_mask, ids, torch.zeros_like(ids, dtype=torch.bool))
    loss_step = caption_step(model, torch.device("cpu"), contextlib.nullcontext(), from_features=cached,
                             output_ids=open_output_ids(model))  # fp32: no autocast
    optimizer = torch.optim.AdamW(parameter_groups(model, 1e-3, 1e-5))

    def step():
        loss = loss_step(batch)[0]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def main(argv=None):
    args = parse_args(argv)
    steps = {f"{variant}@{size}": make_step(variant, args.config, size, args.batch_size, args.tokens, args.words)
             for size in args.sizes for variant in VARIANTS}
    cpu = torch.device("cpu")
    best = {name: min(seconds) for name, seconds in time_alternating(steps, args.repeats, 1, cpu).items()}
    print(f"{'variant':8s} {'size':>5s} {'s/step':>8s}")
    for name, seconds in best.items():
        variant, size = name.split("@")
        print(f"{variant:8s} {size:>5s} {seconds:8.3f}")
    print(json.dumps({**record_header("caption_train", "scripts/dev/bench_caption_train.py",
                                      sys.argv[1:] if argv is None else argv, cpu),
                      "config": args.config, "batch_size": args.batch_size, "tokens": args.tokens,
                      "words": args.words, "seconds_per_step": {name: round(t, 4) for name, t in best.items()}}))


if __name__ == "__main__":
    run_main(main)
