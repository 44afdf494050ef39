"""What every training script does around its epoch loop: its settings, new or resumed from a run
folder, and the run folder held for the whole run (lock, stale temporaries, the last checkpoint,
the background writer), the files each epoch writes there, and the flags every trainer shares."""
import argparse
import json
from contextlib import contextmanager, nullcontext
from pathlib import Path

from data.io import UserError, write_text_atomic
from data.outputs import refuse_folder_in_inputs
from data.resume import differing_settings, resumed_settings
from data.run_files import (METRIC_COLUMNS, check_new_run_folder, locked_run_folder, metrics_csv, read_config,
                            remove_stale_temporaries)
from models.checkpoint import CHECKPOINT_FORMAT, save_checkpoint
from models.training.optim import SCHEDULES
from models.training.distributed import broadcast_flag, global_rank, init_distributed
from models.training.runtime import PRECISIONS, default_num_workers, training_precision
from models.training.settings import check_required, check_resumed_checkpoint, flag_name
from models.training.writer import BackgroundWriter


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
    check_new_run_folder(out)
    refuse_folder_in_inputs(out, [args.data_dir] if args.data_dir else [], "--output_dir")
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


def write_epoch_files(out, weights, config, state, optimizer_state, scheduler_state, improved,
                      format: str = CHECKPOINT_FORMAT, columns=METRIC_COLUMNS) -> None:
    """best.pt (on an improvement), last.pt, then metrics.csv, each atomic; run in the background.
    `state` holds the epoch, the best result so far and the `history` of metric rows."""
    if improved:  # for inference and pictures: no optimizer state (it would double the file)
        save_checkpoint(out / "best.pt", weights, config, format=format, **state)
    save_checkpoint(out / "last.pt", weights, config, format=format, **state, optimizer=optimizer_state,
                    scheduler=scheduler_state)
    # The rows live in last.pt too: a kill between its write and metrics.csv's loses no row.
    write_text_atomic(out / "metrics.csv", metrics_csv(state["history"], columns))


def restore_progress(resumed, optimizer, scheduler, best_key: str, worst: float) -> tuple:
    """(history, best, best_epoch, start_epoch): a new run's, or the `resumed` checkpoint's with the
    optimizer and schedule restored; `best_key` names the checkpoint's best score."""
    if resumed is None:
        return [], worst, 0, 0
    optimizer.load_state_dict(resumed["optimizer"])
    scheduler.load_state_dict(resumed["scheduler"])
    return resumed["history"], resumed[best_key], resumed["best_epoch"], resumed["epoch"]


def write_run_start(out, config: dict, resume: bool, history: list, columns=METRIC_COLUMNS) -> None:
    """config.json (unless a resume changes nothing in it) and metrics.csv rebuilt from the kept rows:
    the rows live in last.pt, so a kill between its write and metrics.csv's loses no row."""
    out = Path(out)
    if not resume or differing_settings([config, read_config(out / "config.json")]):
        write_text_atomic(out / "config.json", json.dumps(config, indent=2) + "\n")
    write_text_atomic(out / "metrics.csv", metrics_csv(history, columns))


def completion_message(start_epoch: int, best_epoch: int, epochs: int, patience: int, criterion: str):
    """Why a run has nothing left to train (its epochs done, or stopped early), or None."""
    if start_epoch > 0 and start_epoch - best_epoch >= patience > 0:
        return (f"it stopped early, no better {criterion} for {patience} epochs; to train on, pass a larger "
                "--patience (0: never stop early)")
    if start_epoch >= epochs:
        return f"to train on, pass --epochs larger than {start_epoch}"
    return None


def stop_early(stop: bool, device, is_main: bool, criterion: str, patience: int) -> bool:
    """Whether every process stops now, as the main process decided; it says why."""
    if not broadcast_flag(stop, device):
        return False
    if is_main:
        print(f"early stop: no better {criterion} for {patience} epochs")
    return True


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
    group.add_argument("--batch_size", type=int, default=batch_size,
                       help=f"{items} per step per process (default: %(default)s)")
    group.add_argument("--grad_accum", type=int, default=1, help="micro-batches per optimizer step (default: 1)")
    group.add_argument("--schedule", choices=SCHEDULES, default=schedule, help="lr after warm-up (default: %(default)s)")
    group.add_argument("--warmup_epochs", type=float, default=warmup_epochs,
                       help="linear lr warm-up length (default: %(default)s)")


def add_runtime_flags(group) -> None:
    """Seed, device, precision, workers, resume and progress bars, as every trainer takes them."""
    group.add_argument("--seed", type=int, default=0, help="same seed, same run; 0..2^32-1 (default: 0)")
    group.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    group.add_argument("--precision", choices=PRECISIONS, default="bf16",
                       help="bf16 autocast on CUDA (default); the CPU always runs fp32")
    group.add_argument("--num_workers", type=int, default=None,
                       help="DataLoader worker processes (default: on a GPU the CPUs available to this process "
                            "divided by the processes per node, at most 8; on the CPU 0)")
    group.add_argument("--resume", action="store_true",
                       help="continue the run in --output_dir from its last.pt, with the settings of its config.json")
    group.add_argument("--no_progress", dest="progress", action="store_false", help="no progress bars")
