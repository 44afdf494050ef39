"""What every training script does around its epoch loop (models.training.loop): its settings, new
or resumed from a run folder, the run folder held for the whole run (lock, stale temporaries, the
last checkpoint, the background writer), this process's place in torchrun's group, and the flags
every trainer shares."""
import argparse
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from data.io import UserError
from data.outputs import check_names_fit, check_output_folder
from data.resume import resumed_settings
from data.run_files import check_new_run_folder, locked_run_folder, read_config, remove_stale_temporaries
from .distributed import global_rank, init_distributed
from .flags import add_batch_size_flag, add_device_flag, add_num_workers_flag
from .optim import SCHEDULES
from .runtime import PRECISIONS, default_num_workers, resolve_device, training_precision
from .settings import check_required, check_resumed_checkpoint, flag_name
from .writer import BackgroundWriter


def given_flags(parser: argparse.ArgumentParser, argv=None) -> dict:
    """The flags written on the command line (not their defaults), by their argparse name."""
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return vars(parser.parse_args(argv))


def resolve_run_args(make_parser, argv, check, make_config, required=()) -> argparse.Namespace:
    """The settings of a training script: on --resume the run's own from its config.json (with the flags
    that may change), else `make_config(args)` of the flags, for a new run in a folder that holds none.
    `make_parser()` builds the script's parser (with --output_dir, --resume). `check(settings, name)`
    checks a dict of settings by the script's rules (models/settings.py), calling a field `name(key)`,
    and returns them resolved: the flags, config.json (which must hold every one of `required`) and the
    two merged are checked alike, so a hand-edited config.json is one line naming the field."""
    parser = make_parser()
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    if args.resume:
        check_names_fit([out], "--output_dir")  # a new run's folder gets every check of check_output_folder
        path = out / "config.json"
        if not path.is_file():
            raise UserError(f"no run to resume in {out}: it holds no config.json")
        defaults = vars(parser.parse_args(["--output_dir", args.output_dir]))
        saved = read_config(path)
        check_required(saved, required, str(path))

        def in_config(key):
            return f"{path}: {key!r}"
        given = given_flags(make_parser(), argv)
        settings = resumed_settings(defaults, check(saved, in_config), given)
        # Only a flag given can break a rule now: the rest come from the checked config.json.
        return argparse.Namespace(**check(settings, lambda key: flag_name(key) if key in given else in_config(key)))
    check_output_folder(out, "--output_dir", inputs=[args.data_dir] if args.data_dir else [])
    check_new_run_folder(out)
    return argparse.Namespace(**make_config(argparse.Namespace(**check(vars(args), flag_name))))


@contextmanager
def run_session(out, resume: bool, load_last, settings: dict):
    """Hold the run folder `out` for a training: yields (the last.pt checkpoint to continue from, or
    None; the BackgroundWriter that writes each epoch's files).

    torchrun's global rank 0 owns the folder: it takes the lock, checks again under it that a new run
    finds the folder empty (a training started at the same moment) and removes the temporaries a
    killed run left. `load_last(path)` reads last.pt, which must hold a training state written with
    the run's `settings` (models.training.settings.check_resumed_checkpoint). Leaving the block
    (normally, on an error or on Ctrl-C) finishes the pending write first, inside the lock.
    """
    out = Path(out)
    is_main = global_rank() == 0
    with locked_run_folder(out) if is_main else nullcontext():
        if is_main and not resume:
            check_new_run_folder(out)
        if is_main:
            for tmp in remove_stale_temporaries(out):
                print(f"removed {tmp.name}, left by a run that was stopped while writing")
        resumed = load_last(out / "last.pt") if resume and (out / "last.pt").exists() else None
        if resumed is not None:
            check_resumed_checkpoint(resumed, settings, out / "last.pt", out / "config.json")
        if resume and resumed is None and is_main:
            print(f"{out} holds no finished epoch (no last.pt): starting it again with its config.json settings")
        with BackgroundWriter() as writer:
            yield resumed, writer


@dataclass
class Run:
    """This process's place in a training run."""
    out: Path  # the run folder
    device: torch.device
    rank: int
    world_size: int
    resumed: dict | None  # the last.pt to continue from
    writer: BackgroundWriter  # writes each epoch's files in the background
    progress: bool  # progress bars: asked for, and this is the main process

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@contextmanager
def training_run(args, load_last):
    """The run of a trainer's settings `args`, held for the block (`run_session`, with `load_last(path)`
    reading last.pt), in torchrun's group when launched by it: yields its `Run`, with
    `args.num_workers` and `args.precision` settled."""
    device = resolve_device(args.device)
    with run_session(args.output_dir, args.resume, load_last, vars(args)) as (resumed, writer):
        rank, world_size, device = start_training_process(args, device)
        yield Run(Path(args.output_dir), device, rank, world_size, resumed, writer, args.progress and rank == 0)


def start_training_process(args, device) -> tuple:
    """(rank, world_size, device) of this process, in torchrun's group when launched by it, with
    `args.num_workers` and `args.precision` settled (the config records what was really used)."""
    rank, world_size, device = init_distributed(device)
    if args.num_workers is None:
        args.num_workers = default_num_workers(device)
    args.precision = training_precision(device, args.precision)
    return rank, world_size, device


def add_loop_flags(group, epochs: int, batch_size: int, items: str, schedule: str, warmup_epochs: float) -> None:
    """The epoch loop's flags, with this trainer's defaults; `items` says what a batch holds."""
    group.add_argument("--epochs", type=int, default=epochs,
                       help="(default: %(default)s); with --resume, a number larger than the run's extends it")
    add_batch_size_flag(group, batch_size, f"{items} per step per process")
    group.add_argument("--grad_accum", type=int, default=1, help="micro-batches per optimizer step (default: 1)")
    group.add_argument("--schedule", choices=SCHEDULES, default=schedule,
                       help="lr after warm-up (default: %(default)s)")
    group.add_argument("--warmup_epochs", type=float, default=warmup_epochs,
                       help="linear lr warm-up length (default: %(default)s)")
    group.add_argument("--save_every", type=int, default=0, metavar="N",
                       help="also keep the checkpoint of every N-th epoch, as epoch_003.pt ..., beside best.pt "
                            "and last.pt; 0 keeps none (default: 0)")


def add_runtime_flags(group) -> None:
    """Seed, device, precision, workers, resume and progress bars, as every trainer takes them."""
    group.add_argument("--seed", type=int, default=0, help="same seed, same run; 0..2^32-1 (default: 0)")
    add_device_flag(group)
    group.add_argument("--precision", choices=PRECISIONS, default="bf16",
                       help="bf16 autocast on CUDA (default); the CPU always runs fp32")
    add_num_workers_flag(group)
    group.add_argument("--resume", action="store_true",
                       help="continue the run in --output_dir from its last.pt, with the settings of its config.json")
    group.add_argument("--no_progress", dest="progress", action="store_false", help="no progress bars")
