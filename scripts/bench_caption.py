"""Greedy captioning speed: `catr.greedy_decode` against the reference loop, same weights, same image.

The published architecture (ResNet-101 backbone, 6 + 6 layers, 30,522-word head) with random weights
(seed 0) captions one random 299x224 image both ways:
  - reference: `catr.reference_greedy_decode`, the whole network over the 128-slot template at every
    step, as CATR's predict.py does;
  - greedy_decode: backbone and encoder once, then at every step the decoder on the newest word only
    (the earlier words' keys and values are kept) and the head on that word only.
Both are forced to run exactly --steps steps by passing end_id=None, so that an early [SEP] from the
random weights cannot stop either one. After an untimed warm-up the two alternate --repeats times and
each keeps its fastest run: on a shared machine other work only ever adds time, and alternating lets
both see the same conditions. The ids must be identical; the attention rows are compared too. The
last line printed is one JSON object.

  python scripts/bench_caption.py --steps 16 --device cpu
"""
import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import catr  # noqa: E402
from data.io import UserError, run_main  # noqa: E402
from models.benchmark import device_name, synchronize  # noqa: E402
from models.runtime import resolve_device  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=16, help="decoding steps, 1..127 (default %(default)s)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if present)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed runs of each, alternating; the fastest counts (default %(default)s)")
    parser.add_argument("--config", choices=sorted(catr.CONFIGS), default="catr", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def timed(device: torch.device, fn, *args, **kwargs) -> tuple:
    """fn's result and its wall time in seconds, with the GPU's queue drained before and after."""
    synchronize(device)
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    synchronize(device)
    return result, time.perf_counter() - start


def main(argv=None) -> None:
    args = parse_args(argv)
    if not 1 <= args.steps <= catr.MAX_STEPS:
        raise UserError(f"--steps must be in 1..{catr.MAX_STEPS}, got {args.steps}")
    if args.repeats < 1:
        raise UserError(f"--repeats must be at least 1, got {args.repeats}")
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = catr.build_model(args.config).to(device).eval()
    image = torch.randn(3, 224, 299, generator=torch.Generator().manual_seed(1)).to(device)

    catr.greedy_decode(model, image, max_steps=2, end_id=None)  # warm-up: kernels, allocator
    catr.reference_greedy_decode(model, image, max_steps=1, end_id=None)
    fast_s = slow_s = encode_s = float("inf")
    for _ in range(args.repeats):
        with torch.no_grad():
            encode_s = min(encode_s, timed(device, model.encode, image[None])[1])  # the part both loops share
        fast, seconds = timed(device, catr.greedy_decode, model, image, max_steps=args.steps, end_id=None)
        fast_s = min(fast_s, seconds)
        slow, seconds = timed(device, catr.reference_greedy_decode, model, image, max_steps=args.steps, end_id=None)
        slow_s = min(slow_s, seconds)

    same_tokens = fast.ids == slow.ids
    attention_diff = (fast.attention - slow.attention).abs().max().item()
    hardware = device_name(device)
    print(f"CATR greedy captioning, {args.config} architecture, random weights, one 299x224 image, "
          f"{args.steps} steps on {device} ({hardware})")
    print(f"  reference (whole network every step):       {slow_s:8.3f} s  ({slow_s / args.steps:.3f} s/step, "
          f"fastest of {args.repeats})")
    print(f"  greedy_decode (encode once, a word a step): {fast_s:8.3f} s  (fastest of {args.repeats})")
    print(f"  of which backbone + encoder once {encode_s:.3f} s, then "
          f"{(fast_s - encode_s) / args.steps * 1000:.1f} ms a word")
    print(f"  speedup {slow_s / fast_s:.1f}x, same tokens: {same_tokens}, "
          f"largest attention difference {attention_diff:.2e}")
    print(json.dumps({
        "speedup": round(slow_s / fast_s, 2),
        "same_tokens": same_tokens,
        "greedy_s": round(fast_s, 4),
        "reference_s": round(slow_s, 4),
        "encode_s": round(encode_s, 4),
        "word_step_s": round((fast_s - encode_s) / args.steps, 5),
        "steps": args.steps,
        "repeats": args.repeats,
        "max_attention_diff": attention_diff,
        "config": args.config,
        "device": str(device),
        "device_name": hardware,
        "threads": torch.get_num_threads(),
        "load_average": round(os.getloadavg()[0], 2),  # other work on the machine slows both loops
        "torch": torch.__version__,
        "date": datetime.date.today().isoformat(),
        "command": " ".join(["python", "scripts/bench_caption.py"] + (sys.argv[1:] if argv is None else argv)),
    }))


if __name__ == "__main__":
    run_main(main)
