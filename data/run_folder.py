"""A run folder of a training (p1_train.py, scripts/train_captioner.py) while it trains: what marks a run, the lock that keeps a second
training out, the temporaries a killed run left, and the settings a resumed run keeps.

Any of RUN_FILES marks a folder as holding a run: a new training refuses it, `--resume` continues it.
A resumed run takes every setting from its config.json; on the command line it accepts only the
flags that do not change what the model learns (RESUME_FREE_FLAGS), the same values again, and the
two that say how long it trains: a larger `--epochs` and a new `--patience`.
"""
import fcntl
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from .io import UserError, make_folder, temporaries_of
from .runs import IGNORED_SETTINGS

RUN_FILES = ("config.json", "metrics.csv", "best.pt", "last.pt")
LOCK_FILE = "train.lock"
# Where the data lives (a moved folder) and how the program runs: never what the model learns.
RESUME_FREE_FLAGS = (*IGNORED_SETTINGS, "data_dir")


def run_files(folder) -> list:
    """The names of the RUN_FILES present in `folder`."""
    return [name for name in RUN_FILES if (Path(folder) / name).exists()]


def check_new_run_folder(folder) -> None:
    """A new run needs a folder that holds no run yet (it may not exist yet)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--output_dir {folder} is a file, not a folder")
    found = run_files(folder) if folder.is_dir() else []
    if found:
        raise UserError(f"{folder} already holds a run ({', '.join(found)}); pass --resume to continue it "
                        "or choose a new --output_dir")


@contextmanager
def locked_run_folder(folder):
    """Create `folder` and hold its lock file for the block: a second training into it stops with one
    line naming the holder. It is a POSIX record lock: it belongs to this process alone (forked
    DataLoader workers do not inherit it), and the system releases it when the process ends, even by
    `kill -9`, so a lock is never stale. A folder this call created is removed again when the block
    fails before writing any of RUN_FILES."""
    created = not Path(folder).exists()
    folder = make_folder(folder, purpose=f"create the run folder {folder}")
    path = folder / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise UserError(f"cannot write in the run folder {folder}: {err.strerror or err}") from None
    locked = False
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except (BlockingIOError, PermissionError):  # EAGAIN or EACCES, by system
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise UserError(f"{folder} is in use by another training ({holder}); wait for it to end "
                            "or choose another --output_dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{Path(sys.argv[0]).name}, process {os.getpid()} on {socket.gethostname()}, since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        yield folder
    finally:
        remove = locked and created and not run_files(folder)
        if remove:
            path.unlink(missing_ok=True)  # still locked: a process that opened it meanwhile cannot lock it
        os.close(fd)  # releases the lock
        if remove:
            try:
                folder.rmdir()
            except OSError:  # something else was written there
                pass


def remove_stale_temporaries(folder) -> list:
    """Delete the temporaries of RUN_FILES that a killed run left (a last.pt one of a ViT-L run holds
    gigabytes). Only safe under the folder's lock. Returns the removed paths."""
    stale = [tmp for name in RUN_FILES for tmp in temporaries_of(Path(folder) / name)]
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def resumed_settings(defaults: dict, saved: dict, given: dict) -> dict:
    """The settings of a resumed run: `saved` (its config.json) over the program's `defaults`, with
    the `given` command-line flags that may change. Any other flag with a new value is refused."""
    settings = {**defaults, **saved}
    for flag, value in given.items():
        if flag in ("resume", "output_dir", "patience") or flag in RESUME_FREE_FLAGS or value == settings.get(flag):
            continue
        if flag == "epochs" and value < settings["epochs"]:
            raise UserError(f"--epochs {value}: the run is set to {settings['epochs']} epochs; a resumed run "
                            f"can be extended (--epochs larger than {settings['epochs']}), not shortened")
        if flag != "epochs":
            raise UserError(f"--{flag} would change what the resumed run learns (it was started with "
                            f"{flag} = {settings.get(flag)!r}); a resumed run keeps the settings of its "
                            "config.json: start a new run in another --output_dir to change them")
    settings.update(given)
    return settings
