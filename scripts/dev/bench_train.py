"""Training throughput of a package ViT: images/s, TFLOP/s, fraction of peak, peak memory.

Random weights and one random batch, so only the model's forward, backward and optimizer step are
timed. The last line printed is one JSON object (img_per_s, peak_mem_mb, tflops, peak_fraction,
epoch_s and every setting).

  python scripts/dev/bench_train.py --model L_16_imagenet1k --image_size 384 --batch_size 64 --device cuda
  python scripts/dev/bench_train.py --model tiny --batch_size 32 --device cpu --attention both
"""
import argparse
import sys

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main

from benchlib import add_common_arguments, print_report, run_benchmark
from models.training.optim import OPTIMIZERS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS,
                        help="optimizer whose step is timed; fused kernels on CUDA (default %(default)s)")
    parser.add_argument("--grad_checkpointing", action="store_true",
                        help="recompute each block's activations in the backward pass (less memory)")
    parser.add_argument("--find_max_batch", action="store_true",
                        help="CUDA only: double the batch from --batch_size until it runs out of "
                             "memory, bisect to the largest that fits, and time that batch")
    return parser.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    print_report(run_benchmark(parse_args(argv), "train", argv))


if __name__ == "__main__":
    run_main(main)
