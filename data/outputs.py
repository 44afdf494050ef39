"""Output paths checked before any work: a file where a folder must go, a folder where a file must go,
a place nothing can be written (a read-only folder, /proc), a name too long for the file system, an
output that is one of the inputs, an output folder inside an input folder, or two outputs naming one
file is refused as one line, so that no run fails at its end and no result is lost.

Every script calls these on each output it will write, before it loads a model or reads the data.
"""
import os
import tempfile
from pathlib import Path

from .io import NAME_MAX, UserError


def _existing_ancestor(path: Path) -> Path:
    """The nearest of `path`'s parents that exists (the working folder at worst)."""
    return next(parent for parent in path.absolute().parents if parent.exists())


def _check_writable(folder: Path, path: Path, flag: str) -> None:
    """A file can be made in the existing `folder`: tried with an unnamed temporary file, since
    permissions alone do not tell (root passes them, and /proc or /sys refuse every new file)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise UserError(f"{flag} {path}: cannot write in {folder} ({err.strerror or err})") from None


def _check_parent(path: Path, flag: str) -> None:
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise UserError(f"{flag} {path}: a file stands where its folder should be ({ancestor})")
    _check_writable(ancestor, path, flag)


def check_names_fit(paths, flag: str) -> None:
    """Every name of `paths` fits the file system's limit on one name (a longer one fails at its write)."""
    for path in paths:
        for part in Path(path).parts:
            if len(os.fsencode(part)) > NAME_MAX:
                raise UserError(f"{flag}: the name {part[:40]}... is {len(os.fsencode(part))} bytes long, and a file "
                                f"system takes at most {NAME_MAX}; give a shorter one")


def check_output_file(path, flag: str, inputs=()) -> Path:
    """A file that can be written: not a folder (nor named as one, with a final /), a name that fits, no
    file among its parents, and none of `inputs`."""
    check_names_fit([path], flag)
    if str(path).endswith(os.sep) or Path(path).is_dir():
        raise UserError(f"{flag} {path} is a folder; give a file name such as {Path(path) / 'out'}")
    path = Path(path)
    _check_parent(path, flag)
    refuse_inputs([path], inputs, flag)
    return path


def check_output_folder(path, flag: str, inputs=()) -> Path:
    """A folder that exists or can be created, and written in: not a file, no file among its parents,
    neither one of the input folders `inputs` nor inside one, nor the folder holding an input file."""
    path = Path(path)
    check_names_fit([path], flag)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not a folder")
    if path.exists():
        _check_writable(path, path, flag)
    else:
        _check_parent(path, flag)
    refuse_folder_in_inputs(path, inputs, flag)
    return path


def refuse_folder_in_inputs(folder, inputs, flag: str) -> None:
    """Refuse writing into `folder` when it is one of the folders among `inputs`, lies inside one, or holds
    one of the files among them: what it receives would be read as data next time (a figure counted as
    an image)."""
    where = Path(folder).resolve()
    for path in map(Path, inputs):
        if path.is_dir() and where.is_relative_to(path.resolve()):
            raise UserError(f"{flag} {folder} is {'the' if where == path.resolve() else 'inside the'} input "
                            f"folder {path}: its files would mix with the data; choose a folder outside it")
        if path.is_file() and where == path.resolve().parent:
            raise UserError(f"{flag} {folder} holds the input {path}: what is written there would mix with the "
                            "data; choose another folder")


def check_distinct_outputs(outputs: dict) -> None:
    """No two of a script's outputs ({flag: path or None}) name one file, under any name: one would be
    lost."""
    named = [(flag, Path(path)) for flag, path in outputs.items() if path is not None]
    seen = {}
    for flag, path in named:
        key = _identity(path) or path.resolve()
        if key in seen:
            raise UserError(f"{seen[key]} and {flag} name the same file {path}; give each its own")
        seen[key] = flag


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
