"""Files and failures: atomic writes, and the one-line errors every script reports.

A `UserError` is a problem with what the user gave us (a missing folder, a corrupt image, a checkpoint
of another model). Entry points report it as one line through `data.entry.run_main`.
"""
import fcntl
import glob
import hashlib
import os
import socket
import struct
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


TEMP_SUFFIX = ".tmp"
NAME_MAX = 255  # bytes in one file name on Linux's file systems
_RANDOM = 8  # the characters mkstemp adds


class UserError(Exception):
    """Bad input from the user, reported as one line and a non-zero exit."""


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


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


def sidecar_name(path, tag: str) -> str:
    """The name of a hidden file beside `path` for `tag` (".NAME.TAG"), shortened so that it fits where
    NAME fits: a name near the limit keeps its beginning and a hash of the whole."""
    name = Path(path).name
    whole = f".{name}.{tag}"
    if len(os.fsencode(whole)) <= NAME_MAX:
        return whole
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    keep = name
    while len(os.fsencode(f".{keep}~{digest}.{tag}")) > NAME_MAX:
        keep = keep[:-1]
    return f".{keep}~{digest}.{tag}"


def _temporary_prefix(path: Path) -> str:
    """What the temporaries of `path` start with: a name as long as NAME_MAX still leaves them room."""
    return sidecar_name(path, "X" * (_RANDOM + len(TEMP_SUFFIX)))[: -(_RANDOM + len(TEMP_SUFFIX))]


@contextmanager
def atomic_path(path, durable: bool = True, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds.

    A reader never sees a half-written file, and a crash leaves the previous version in place. With
    `durable`, the temporary is flushed to disk before the rename and the folder after it, so a power
    cut cannot leave an empty file under the final name either (a few milliseconds per file). Without
    `replace`, a `path` that exists by then (another process wrote it meanwhile) is kept and the write
    refused: the temporary takes the name only where none is (a hard link, created exclusively).
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a folder; give a file name")
    make_folder(path.parent, purpose=f"write {path}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None
    os.close(fd)
    tmp = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the result should follow the umask like any file
    try:
        yield tmp
        if durable:
            _fsync(tmp)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise UserError(f"{path} was created by another process while this one worked; it is left "
                                "as it is, and this result is not written") from None
        if durable:
            _fsync(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def exclusive_lock(path, program: str, in_use: str, advice: str) -> Iterator[Path]:
    """Hold a lock on the file `path` (created if needed) for the block, with `program`, the process and
    the time written in it. While another process holds it, UserError "`in_use` (what it wrote); `advice`".

    It is a POSIX record lock: it belongs to this process alone (forked DataLoader workers do not
    inherit it), and the system releases it when the process ends, even by `kill -9`, so a lock is
    never stale.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):  # EAGAIN or EACCES, by system
            raise UserError(f"{in_use} ({_holder_text(fd)}); {advice}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{program}, process {os.getpid()} on {socket.gethostname()}, since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


# Linux's struct flock (l_type, l_whence, l_start, l_len, l_pid), for asking about a lock without taking it.
_FLOCK = "hhqqi4x"


def lock_holder(path) -> str | None:
    """What the process holding `exclusive_lock(path)` wrote in it, or None when no other process holds
    it (or there is no such file). It only asks (F_GETLK): a lock taken to test would, for that instant,
    keep the holder's rightful successor out."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        if struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, query))[0] == fcntl.F_UNLCK:
            return None
        return _holder_text(fd)
    finally:
        os.close(fd)


def _holder_text(fd: int) -> str:
    """The line `exclusive_lock` wrote in the lock file open as `fd`."""
    return os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"


def remove_temporaries(path) -> list:
    """Delete the temporaries of `path` that a killed process left (`temporaries_of`); only safe while
    holding a lock that keeps every other writer of `path` out. Returns the removed paths."""
    stale = temporaries_of(path)
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def temporaries_of(path) -> list:
    """The temporary files that `atomic_path(path)` makes, left behind when a process was killed."""
    path = Path(path)
    return sorted(path.parent.glob(f"{glob.escape(_temporary_prefix(path))}*{TEMP_SUFFIX}"))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_text(path, what: str) -> str:
    """A UTF-8 text file the user named; a missing or unreadable one is one line naming `what` it is."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read {what} {path}: {getattr(err, 'strerror', None) or err}") from None


def write_text_atomic(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def torch_save_atomic(obj, path) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
