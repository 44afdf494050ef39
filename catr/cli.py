"""Flags the captioning scripts share: which weights to load, and how to search for captions."""
import argparse

import torch

from data.io import UserError, warn
from data.resumable import file_identity
from data.weights import read_torch_file
from models.training.flags import add_batch_size_flag, add_device_flag
from models.training.runtime import device_memory
from models.training.settings import TRAINING_RULES, check_settings, finite_number, whole_number

from .captioner import CONFIGS, build_model
from .checkpoint import checkpoint_config, is_caption_checkpoint
from .decode import MAX_STEPS, search_memory_bytes, vocabulary_size
from .weights import DEFAULT_VERSION, WEIGHT_URLS, load_model


def add_weight_arguments(parser: argparse.ArgumentParser, several: bool = False) -> None:
    """--version, --weights FILE (or FILE ... when `several`: a list), --random_weights."""
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--version", default=DEFAULT_VERSION,
                         help=f"published weights ({', '.join(WEIGHT_URLS)}), downloaded once into the "
                              "torch hub cache (default: %(default)s)")
    weights.add_argument("--weights", metavar="FILE", nargs="+" if several else None,
                         help="a local checkpoint instead: a dict with the state dict under 'model'"
                              + ("; several are compared on the same words" if several else ""))
    # Tests and the demo: a randomly initialised model, whose captions are noise.
    weights.add_argument("--random_weights", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="catr", help=argparse.SUPPRESS)


def add_search_arguments(parser: argparse.ArgumentParser, batch_size: int) -> None:
    parser.add_argument("--beam", type=int, default=1, metavar="N",
                        help="beam search with N beams; 1 is greedy search (default: %(default)s)")
    parser.add_argument("--length_penalty", type=float, default=0.0, metavar="A",
                        help="beam search ranks finished captions by log-probability / length ** A, the "
                             "length counting the words and the end; 0 ranks by the raw sum, larger values "
                             "favour longer captions; -10 <= A < 10 (default: %(default)s)")
    add_batch_size_flag(parser, batch_size, "images decoded together; images of the same size share a batch, "
                                            "others are decoded in groups of one size")
    parser.add_argument("--max_steps", type=int, default=MAX_STEPS,
                        help="at most this many tokens, 1..%(default)s (default: %(default)s)")
    add_device_flag(parser)


# The search flags' rules. A NaN or infinite length penalty leaves the beams' ranking undefined, and
# length ** A overflows (or rounds to 0) for |A| in the hundreds; |A| under 10 keeps 127 ** A within a
# double's range, far beyond the 0..2 that beam searches use.
MAX_LENGTH_PENALTY = 10
SEARCH_RULES = {"beam": whole_number(1), "batch_size": TRAINING_RULES["batch_size"],
                "max_steps": whole_number(1, MAX_STEPS),
                "length_penalty": finite_number(-MAX_LENGTH_PENALTY, MAX_LENGTH_PENALTY)}


def check_search_arguments(args) -> None:
    check_settings(vars(args), SEARCH_RULES)


def add_skip_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip_bad_images", action="store_true",
                        help="leave out, with a warning, an image that cannot be read (default: stop at it, "
                             "naming it; what is done is kept)")


def check_beam(args, model, device: torch.device) -> None:
    """Refuse a beam wider than the vocabulary (no search can keep more hypotheses than words), and a
    beam and batch whose search would not fit in the memory free now, naming the size needed."""
    vocab = vocabulary_size(model)
    if args.beam > vocab:
        raise UserError(f"--beam {args.beam} is wider than the vocabulary ({vocab} words); give at most {vocab}")
    needed = search_memory_bytes(model, args.beam, args.batch_size, args.max_steps)
    free = device_memory(device)
    if needed > free:
        raise UserError(f"--beam {args.beam} with --batch_size {args.batch_size} needs about {needed / 2**30:.1f} GiB "
                        f"for the search, and {device} has {free / 2**30:.1f} GiB free: give a smaller --beam or "
                        "--batch_size")


def search_description(args) -> str:
    if args.beam == 1:
        return "greedy search"
    return f"beam search, {args.beam} beams, length penalty {args.length_penalty:g}"


def load_captioner(args, device: torch.device):
    """The captioner the weight flags name, in eval mode on `device`."""
    if args.random_weights:
        warn(f"random weights ({args.config} configuration): the captions are noise")
        torch.manual_seed(0)
        return build_model(args.config).to(device).eval()
    return load_model(args.version, args.weights, config=args.config, device=device)


def captioner_config(args):
    """The CaptionConfig the weight flags give: a train_captioner.py checkpoint's own, else --config's."""
    if args.weights and not args.random_weights:
        checkpoint = read_torch_file(args.weights, expected="a CATR checkpoint")
        if is_caption_checkpoint(checkpoint):
            return checkpoint_config(checkpoint, str(args.weights))
    return CONFIGS[args.config]


def weights_identity(args) -> str:
    """What identifies the weights the flags name: a file by its content, whatever its name."""
    if args.random_weights:
        return f"random weights, {args.config} configuration"
    if args.weights:
        return file_identity(args.weights)
    return f"CATR {args.version}"


def weights_description(args) -> str:
    if args.random_weights:
        return "random weights: the caption is noise"
    return args.weights or f"CATR {args.version}"
