"""Files and failures: atomic writes, and the one-line errors every script reports.

A `UserError` is a problem with what the user gave us (a missing folder, a corrupt image, a checkpoint
of another model). Scripts run their `main` through `run_main`, which prints such an error as a single
line and exits with status 2 instead of showing a traceback.
"""
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


class UserError(Exception):
    """Bad input from the user, reported as one line and a non-zero exit."""


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def run_main(main: Callable[[], object]) -> None:
    try:
        main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr, flush=True)
        sys.exit(130)


def make_folder(path, purpose: str = "") -> Path:
    """mkdir -p, with a file in the way or a missing permission reported as one line."""
    path = Path(path)
    what = purpose or f"create {path}"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"cannot {what}: a file stands where its folder should be") from None
    except OSError as err:
        raise UserError(f"cannot {what}: {err.strerror or err}") from None
    return path


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds.

    A reader never sees a half-written file, and a crash leaves the previous version in place.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a folder; give a file name")
    make_folder(path.parent, purpose=f"write {path}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None
    os.close(fd)
    tmp = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the result should follow the umask like any file
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def torch_save_atomic(obj, path) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
