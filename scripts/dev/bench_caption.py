"""Captioning speed: the fast decoder against the reference loop, batches against one at a time, beam against greedy.

The published architecture (ResNet-101 backbone, 6 + 6 layers, 30,522-word head) with random weights
(seed 0), random 299x224 images (the size a 640x480 COCO image becomes), three comparisons:
  - greedy captioning of one image: `catr.reference_greedy_decode`, the whole network over the
    128-slot template at every step as CATR's predict.py does, against `catr.greedy_decode`:
    backbone and encoder once, then at every step the decoder on the newest word only (the earlier
    words' keys and values are kept) and the head on that word only;
  - greedy captioning of --batch same-size images: one `catr.generate` call for all of them against
    `greedy_decode` image by image, in captions per second;
  - `catr.generate` with --beam beams against greedy search, on one image.
Every caption is forced to run exactly --steps steps by passing end_id=None, so that an early [SEP]
from the random weights cannot stop one and not another. After an untimed warm-up all runs alternate
--repeats times and each keeps its fastest: on a shared machine other work only ever adds time, and
alternating lets all see the same conditions. The fast decoder's ids must equal the reference's, and
the batch's those of the images alone. The last line printed is one JSON object.

  python scripts/dev/bench_caption.py --steps 16 --device cpu
"""
import argparse
import json
import sys

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main
from data.io import UserError
import torch

import catr
from benchlib import device_name, record_header, time_alternating
from models.training.runtime import resolve_device


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=16, help="decoding steps, 1..127 (default %(default)s)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if present)")
    parser.add_argument("--batch", type=int, default=8, help="same-size images decoded together (default %(default)s)")
    parser.add_argument("--beam", type=int, default=3, help="beams, against greedy search (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed runs of each, alternating; the fastest counts (default %(default)s)")
    parser.add_argument("--config", choices=sorted(catr.CONFIGS), default="catr", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if not 1 <= args.steps <= catr.MAX_STEPS:
        raise UserError(f"--steps must be in 1..{catr.MAX_STEPS}, got {args.steps}")
    for flag in ("repeats", "batch", "beam"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = catr.build_model(args.config).to(device).eval()
    images = list(torch.randn(args.batch, 3, 224, 299, generator=torch.Generator().manual_seed(1)).to(device))
    image = images[0]
    steps = dict(max_steps=args.steps, end_id=None)

    def encode():
        with torch.no_grad():
            return model.encode(image[None])  # the part both greedy loops share

    runs = {
        "encode": encode,
        "greedy": lambda: catr.greedy_decode(model, image, **steps),
        "reference": lambda: catr.reference_greedy_decode(model, image, **steps),
        "batched": lambda: catr.generate(model, images, **steps),
        "one_at_a_time": lambda: [catr.greedy_decode(model, one, **steps) for one in images],
        "beam": lambda: catr.generate(model, [image], beam_size=args.beam, **steps)[0],
    }
    catr.generate(model, images[:2], beam_size=2, max_steps=2, end_id=None)  # warm-up: kernels, allocator
    catr.reference_greedy_decode(model, image, max_steps=1, end_id=None)
    results = {}
    seconds = {name: min(times) for name, times in
               time_alternating(runs, args.repeats, 0, device, results=results).items()}

    fast, slow = results["greedy"], results["reference"]
    same_tokens = fast.ids == slow.ids
    attention_diff = (fast.attention - slow.attention).abs().max().item()
    batch_same_tokens = [d.ids for d in results["batched"]] == [d.ids for d in results["one_at_a_time"]]
    fast_s, slow_s, encode_s = seconds["greedy"], seconds["reference"], seconds["encode"]
    batched_rate, sequential_rate = args.batch / seconds["batched"], args.batch / seconds["one_at_a_time"]
    beam_ratio = seconds["beam"] / fast_s
    hardware = device_name(device)
    print(f"CATR captioning, {args.config} architecture, random weights, 299x224 images, "
          f"{args.steps} steps on {device} ({hardware}), fastest of {args.repeats}")
    print(f"  reference (whole network every step):       {slow_s:8.3f} s  ({slow_s / args.steps:.3f} s/step)")
    print(f"  greedy_decode (encode once, a word a step): {fast_s:8.3f} s")
    print(f"  of which backbone + encoder once {encode_s:.3f} s, then "
          f"{(fast_s - encode_s) / args.steps * 1000:.1f} ms a word")
    print(f"  speedup {slow_s / fast_s:.1f}x, same tokens: {same_tokens}, "
          f"largest attention difference {attention_diff:.2e}")
    print(f"  {args.batch} images, greedy:  one generate call {batched_rate:6.2f} captions/s  |  "
          f"one at a time {sequential_rate:6.2f} captions/s  ({batched_rate / sequential_rate:.2f}x, "
          f"same tokens: {batch_same_tokens})")
    print(f"  beam {args.beam} on one image: {seconds['beam']:.3f} s, {beam_ratio:.2f}x greedy")
    print(json.dumps({
        **record_header("caption", "scripts/dev/bench_caption.py", sys.argv[1:] if argv is None else argv, device),
        "speedup": round(slow_s / fast_s, 2),
        "same_tokens": same_tokens,
        "greedy_s": round(fast_s, 4),
        "reference_s": round(slow_s, 4),
        "encode_s": round(encode_s, 4),
        "word_step_s": round((fast_s - encode_s) / args.steps, 5),
        "batch": args.batch,
        "batched_captions_per_s": round(batched_rate, 3),
        "one_at_a_time_captions_per_s": round(sequential_rate, 3),
        "batched_speedup": round(batched_rate / sequential_rate, 2),
        "batch_same_tokens": batch_same_tokens,
        "beam": args.beam,
        "beam_s": round(seconds["beam"], 4),
        "beam_over_greedy": round(beam_ratio, 2),
        "steps": args.steps,
        "repeats": args.repeats,
        "max_attention_diff": attention_diff,
        "config": args.config,
    }))

if __name__ == "__main__":
    run_main(main)
