"""Weight files and state dicts: reading, downloading and comparing them, with one-line errors.

Shared by the ViT loaders (models/vit.py, models/checkpoint.py), CATR's (catr/weights.py) and the checkpoints
(data/checkpoints.py).
"""
import warnings
from pathlib import Path

import torch

from .io import UserError, some_names

# The first bytes of what torch.save writes: a zip archive, or (the legacy format) a pickle's protocol mark.
TORCH_FILE_STARTS = (b"PK", b"\x80")


def first_line(err: Exception) -> str:
    """The telling sentence of an error; torch.load's weights-only errors open with a long preamble."""
    lines = str(err).split("WeightsUnpickler error:")[-1].strip().splitlines()
    return lines[0].split(". ")[0] if lines else type(err).__name__


def read_torch_file(path, what: str = "weights file", expected: str = "a readable PyTorch file"):
    """`torch.load` of a local file with `weights_only=True`; a missing or unreadable file is one line."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder, not {expected}; give the file")
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        with open(path, "rb") as stream:
            start = stream.read(2)
    except OSError as err:
        raise UserError(f"cannot read {what} {path}: {err.strerror or err}") from None
    if not start.startswith(TORCH_FILE_STARTS):
        raise UserError(f"{path} is not {expected}: it is not a file torch.save writes (those start as a zip "
                        f"archive or a pickle; this starts with {start!r})")
    try:
        with warnings.catch_warnings():  # torch warns of a pickle protocol it may not read, before failing
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types for a file that is not a checkpoint
        damaged = "; it may be cut short or damaged" if start == TORCH_FILE_STARTS[0] else ""  # a zip archive
        raise UserError(f"{path} is not {expected}: torch.load cannot read it ({first_line(err)}){damaged}") from None


def download_state(url: str, what: str):
    """A file from `url` through the torch hub cache; a failed download names the URL and --weights."""
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=True, weights_only=True)
    except Exception as err:  # URLError, HTTPError, OSError, a truncated file ...
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise UserError(f"could not download the {what} from {url} ({first_line(err)}); download the file "
                        f"yourself (into {cache} or anywhere) and pass --weights FILE") from None


def _mismatch(expected: dict, given: dict, ignore=()) -> str | None:
    """What keeps `given` from loading strictly into a model whose state dict is `expected`, or None:
    keys missing or unexpected, and values that are no tensors or of another shape."""
    missing = [k for k in expected if k not in given and k not in ignore]
    unexpected = [k for k in given if k not in expected]
    shared = [k for k in expected if k in given]
    not_tensors = [f"{k} ({type(given[k]).__name__})" for k in shared if not isinstance(given[k], torch.Tensor)]
    reshaped = [f"{k} {tuple(given[k].shape)} instead of {tuple(expected[k].shape)}"
                for k in shared if isinstance(given[k], torch.Tensor) and given[k].shape != expected[k].shape]
    problems = [f"{what} ({len(keys)}): {some_names(keys)}"
                for what, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                   ("values that are not tensors", not_tensors),
                                   ("keys with another shape", reshaped)) if keys]
    return "; ".join(problems) or None


def check_state_dict(expected: dict, given: dict, source, mismatch: str, ignore=()) -> None:
    """Refuse, as one line, a state dict `given` (read from `source`) that does not fit a model whose
    state dict is `expected` ("`mismatch`: what differs"), or that holds NaN or infinite values: weights
    a diverged training wrote, whose every output is NaN."""
    problem = _mismatch(expected, given, ignore)
    if problem:
        raise UserError(f"{mismatch}: {problem}")
    non_finite = [k for k, value in given.items()
                  if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all()]
    if non_finite:
        raise UserError(f"{source} holds NaN or infinite weights ({len(non_finite)}: {some_names(non_finite)}), as a "
                        "training that diverged writes them; use a checkpoint from before it diverged")
