"""Output paths checked before any work: a file where a folder must go, a folder where a file must go,
or an output that is one of the inputs is refused as one line, so that no run fails at its end.

Every script calls these on each output it will write, before it loads a model or reads the data.
"""
import os
from pathlib import Path

from .io import UserError


def _existing_ancestor(path: Path) -> Path:
    """The nearest of `path`'s parents that exists (the working folder at worst)."""
    return next(parent for parent in path.absolute().parents if parent.exists())


def _check_parent(path: Path, flag: str) -> None:
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise UserError(f"{flag} {path}: a file stands where its folder should be ({ancestor})")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path}: cannot write in {ancestor} (permission denied)")


def check_output_file(path, flag: str, inputs=()) -> Path:
    """A file that can be written: not a folder, no file among its parents, and none of `inputs`."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder; give a file name such as {path / 'out'}")
    _check_parent(path, flag)
    refuse_inputs([path], inputs, flag)
    return path


def check_output_folder(path, flag: str) -> Path:
    """A folder that exists or can be created: not a file, no file among its parents."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not a folder")
    if not path.exists():
        _check_parent(path, flag)
    return path


def _identity(path):
    """(device, inode) of an existing file: what tells two names of one file apart from two files."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _files(inputs) -> list:
    """The input files, a folder standing for the files directly in it."""
    files = []
    for path in inputs:
        path = Path(path)
        if path.is_dir():
            try:
                files += [entry for entry in path.iterdir() if entry.is_file()]
            except OSError:  # an unreadable folder: reading it fails later with its own line
                continue
        else:
            files.append(path)
    return files


def refuse_inputs(outputs, inputs, flag: str) -> None:
    """Refuse writing any of `outputs` when it is one of `inputs` (files, or folders of them), under any
    name (a link included)."""
    read = {}
    for path in _files(inputs):
        identity = _identity(path)
        if identity is not None:
            read.setdefault(identity, path)
    if not read:
        return
    for path in outputs:
        identity = _identity(path)
        if identity in read:
            raise UserError(f"{flag}: writing {path} would overwrite the input {read[identity]}; "
                            "choose another output")
