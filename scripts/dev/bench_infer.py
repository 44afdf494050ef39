"""Inference throughput of a package ViT: images/s, TFLOP/s, fraction of peak, peak memory.

Random weights and one random batch in eval mode under torch.inference_mode. The last line printed
is one JSON object (img_per_s, peak_mem_mb, tflops, peak_fraction, test_set_s and every setting).
`--attention both` times the explicit and the fast path alternately on the same weights in this one
process and prints their ratio.

  python scripts/dev/bench_infer.py --model B_16_imagenet1k --image_size 384 --batch_size 4 --device cpu --attention both
"""
import argparse
import sys

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main

from benchlib import add_common_arguments, print_report, run_benchmark


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    print_report(run_benchmark(parse_args(argv), "infer", argv))


if __name__ == "__main__":
    run_main(main)
