"""Images/s of one data-loading worker for training: today's float path against the uint8 paths.

Writes --count Pets-sized JPEGs (500 x 375, about the Oxford-IIIT Pet files) and times, in this one
process and in alternating rounds, what a DataLoader worker does per training item (one thread,
items collated into shared-memory batches):
  float:   decode the JPEG, RandomResizedCrop + flip, ToTensor, Normalize (the float path)
  uint8:   decode the JPEG, RandomResizedCrop + flip, PILToTensor (normalised later on the device)
  cached:  RandomResizedCrop + flip, PILToTensor from images decoded once (--cache_images)
The last line is one JSON object: each path's images/s and `speedup` (uint8 over float) and
`speedup_cached` (cached over float).

  python scripts/dev/bench_data.py --image_size 384 --count 200
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main  # first: Ctrl-C during the slow imports below is one line

from data.io import UserError
import torch
from data.datasets import ImageFolder
from data.synthetic import write_pets_sized_jpegs
from data.transforms import train_transform
from models.training.runtime import torch_threads
from benchlib import device_name, record_header, timed

PATHS = ("float", "uint8", "cached")


def items_per_second(dataset, seed: int, batch_size: int) -> float:
    """A worker's whole job: seeded items, collated into batches (into shared memory, as a worker
    does, so the bytes it hands over are part of the cost)."""
    items = [(index, seed + index) for index in range(len(dataset))]

    def batches():
        for first in range(0, len(items), batch_size):
            images = [dataset[item][0] for item in items[first:first + batch_size]]
            out = images[0].new_empty((len(images),) + images[0].shape).share_memory_()
            torch.stack(images, out=out)

    return len(dataset) / timed(batches, torch.device("cpu"))[1]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image_size", type=int, default=384, help="crop side in pixels (default: 384)")
    parser.add_argument("--count", type=int, default=200, help="JPEGs to write and load per round (default: 200)")
    parser.add_argument("--batch_size", type=int, default=16, help="items collated per batch (default: 16)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per path; the best counts (default: 3)")
    parser.add_argument("--out_dir", default=None, help="folder for the JPEGs (default: a temporary one, removed after)")
    args = parser.parse_args(argv)
    if min(args.image_size, args.count, args.rounds, args.batch_size) < 1:
        raise UserError("--image_size, --count, --batch_size and --rounds must be at least 1")
    with torch_threads(1):  # as in a DataLoader worker, which PyTorch limits to one thread
        with tempfile.TemporaryDirectory() as scratch:
            folder = write_pets_sized_jpegs(Path(args.out_dir or scratch) / "train", args.count, labeled=True)
            datasets = {
                "float": ImageFolder(folder, train_transform(args.image_size)),
                "uint8": ImageFolder(folder, train_transform(args.image_size, to_float=False)),
                "cached": ImageFolder(folder, train_transform(args.image_size, to_float=False), cache_images=True),
            }
            rates = {path: [] for path in PATHS}
            for round_ in range(args.rounds):  # alternate, so a machine that gets busier skews all paths alike
                for path in PATHS:
                    rates[path].append(items_per_second(datasets[path], round_ * args.count, args.batch_size))
        best = {path: round(max(rates[path]), 1) for path in PATHS}
        for path in PATHS:
            print(f"{path:>7}: {best[path]:7.1f} images/s per worker (rounds: "
                  f"{', '.join(f'{r:.1f}' for r in rates[path])})")
        record = {
            **record_header("data", "scripts/dev/bench_data.py", argv, torch.device("cpu")),
            "device_name": device_name(torch.device("cpu")).split(",")[0],  # one process, one core
            "image_size": args.image_size,
            "count": args.count,
            "batch_size": args.batch_size,
            "rounds": args.rounds,
            **{f"{path}_img_per_s": best[path] for path in PATHS},
            "speedup": round(best["uint8"] / best["float"], 3),
            "speedup_cached": round(best["cached"] / best["float"], 3),
        }
        print(f"uint8 / float: {record['speedup']:.2f}x, cached / float: {record['speedup_cached']:.2f}x")
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    run_main(main)
