"""The files of a training's run folder (p1_train.py, scripts/train_captioner.py): what marks a run,
the checkpoints kept every few epochs, the lock that keeps a second training out, the temporaries a
killed run left, and config.json and metrics.csv written and read back.

Any of RUN_FILES marks a folder as holding a run: a new training refuses it, `--resume` continues it.
A run whose lock is held is still training.
"""
import csv
import io
import json
import math
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .io import TEMP_SUFFIX, UserError, exclusive_lock, lock_holder, make_folder, remove_temporaries

RUN_FILES = ("config.json", "metrics.csv", "best.pt", "last.pt")
LOCK_FILE = "train.lock"
EPOCH_TEMPORARY = re.compile(r"\.(epoch_\d+\.pt)\.")  # what a temporary of a kept epoch's checkpoint starts with


def epoch_file(epoch: int) -> str:
    """The name of the checkpoint kept after `epoch` (1-based): epoch_003.pt."""
    return f"epoch_{epoch:03d}.pt"


def run_files(folder) -> list:
    """The names of the RUN_FILES present in `folder`."""
    return [name for name in RUN_FILES if (Path(folder) / name).exists()]


def check_new_run_folder(folder) -> None:
    """A new run needs a folder that holds no run yet (it may not exist yet); that it can be a folder
    at all is data.outputs.check_output_folder's rule."""
    folder = Path(folder)
    found = run_files(folder) if folder.is_dir() else []
    if found:
        raise UserError(f"{folder} already holds a run ({', '.join(found)}); pass --resume to continue it "
                        "or choose a new --output_dir")


@contextmanager
def locked_run_folder(folder):
    """Create `folder` and hold its lock file for the block (`data.io.exclusive_lock`): a second
    training into it stops with one line naming the holder. A folder this call created is removed
    again when the block fails before writing any of RUN_FILES."""
    created = not Path(folder).exists()
    folder = make_folder(folder, purpose=f"create the run folder {folder}")
    path = folder / LOCK_FILE
    remove = False
    try:
        with exclusive_lock(path, Path(sys.argv[0]).name, f"{folder} is in use by another training",
                            "wait for it to end or choose another --output_dir"):
            try:
                yield folder
            finally:
                remove = created and not run_files(folder)
                if remove:
                    path.unlink(missing_ok=True)  # still locked: a process that opened it meanwhile cannot lock it
    finally:
        if remove:
            try:
                folder.rmdir()
            except OSError:  # something else was written there
                pass


def remove_stale_temporaries(folder) -> list:
    """Delete the temporaries of RUN_FILES and of the kept epochs' checkpoints that a killed run left
    (a last.pt one of a ViT-L run holds gigabytes). Only safe under the folder's lock. Returns the
    removed paths."""
    folder = Path(folder)
    kept = sorted({match.group(1) for path in folder.glob(f".epoch_*{TEMP_SUFFIX}")
                   if (match := EPOCH_TEMPORARY.match(path.name))})
    return [tmp for name in (*RUN_FILES, *kept) for tmp in remove_temporaries(folder / name)]


METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")
REQUIRED_COLUMNS = ("epoch", "train_loss", "val_acc")  # what the comparison reads


class NoFinishedEpoch(UserError):
    """The run folder holds no epoch to compare yet: a training before its first epoch ends, or one
    stopped then."""


@dataclass(frozen=True)
class Criterion:
    """What chose a run's best.pt: a metrics.csv column, how it is called, and whether higher is better."""
    column: str
    label: str
    higher: bool = True


VAL_ACCURACY = Criterion("val_acc", "val acc (%)")  # p1_train.py
VAL_CIDER = Criterion("val_cider", "val CIDEr-D")  # train_captioner.py, scoring val captions
VAL_LOSS = Criterion("val_loss", "val loss", higher=False)  # train_captioner.py --score_images 0


@dataclass
class Run:
    path: Path
    config: dict
    metrics: list  # one dict per epoch, values as numbers, in file order
    in_progress: str | None = None  # while it trains, what its train.lock says of the training

    @property
    def criterion(self) -> Criterion:
        """What the training that wrote the run chose its best.pt by: a captioner's run (its config holds
        the CATR configuration) by val CIDEr-D, or val loss when it scored no captions; a ViT's by
        validation accuracy."""
        if "catr" not in self.config:
            return VAL_ACCURACY
        return VAL_LOSS if self.config.get("score_images") == 0 else VAL_CIDER

    @property
    def kind(self) -> str:
        return "captioner" if "catr" in self.config else "ViT classifier"

    @property
    def best(self) -> dict | None:
        """The epoch of best.pt: the best value of the run's criterion, the first one on a tie, as the
        trainers keep it; a NaN never improves on another. None when no epoch has a finite value."""
        column, sign = self.criterion.column, 1 if self.criterion.higher else -1
        finite = [row for row in self.metrics
                  if isinstance(row.get(column), (int, float)) and math.isfinite(row[column])]
        return max(finite, key=lambda row: sign * row[column]) if finite else None


def metrics_csv(history: list, columns=METRIC_COLUMNS) -> str:
    """metrics.csv as text: one row per epoch, `columns`, floats to 6 significant digits."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in columns})
    return buf.getvalue()


def read_run(folder) -> Run:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"run folder not found: {folder}")
    return Run(folder, read_config(folder / "config.json"), _read_metrics(folder / "metrics.csv"),
               lock_holder(folder / LOCK_FILE))


def read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} not found: is {path.parent} a run folder written by p1_train.py?") from None
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {path}: {err}") from None
    if not isinstance(config, dict):
        raise UserError(f"{path} does not hold a JSON object of settings")
    return config


def _read_metrics(path: Path) -> list:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise UserError(f"{path} lacks the column(s) {', '.join(missing)}")
            rows = []
            for row in reader:
                fields = [v for k, v in row.items() if k is not None and v is not None] + row.get(None, [])
                if len(fields) != len(reader.fieldnames):
                    raise UserError(f"{path} line {reader.line_num} has {len(fields)} fields, "
                                    f"its header {len(reader.fieldnames)}")
                rows.append({k: _number(v) for k, v in row.items()})
    except FileNotFoundError:
        raise NoFinishedEpoch(f"{path} not found: the run has not finished an epoch yet") from None
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {path}: {err}") from None
    if not rows:
        raise NoFinishedEpoch(f"{path} holds no epochs yet")
    return rows


def _number(text: str):
    if text == "":  # a column the epoch did not measure (a captioner's val CIDEr-D without scoring)
        return math.nan
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


