"""Weight files and state dicts: reading, downloading and comparing them, with one-line errors.

Shared by the ViT loaders (models/vit.py, models/checkpoint.py) and CATR's (catr/weights.py).
"""
import warnings
from pathlib import Path

import torch

from data.io import UserError

SHOWN_KEYS = 3  # how many offending keys an error message names
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
        raise UserError(f"{path} is not {expected}: torch.load cannot read it ({first_line(err)})") from None


def download_state(url: str, what: str):
    """A file from `url` through the torch hub cache; a failed download names the URL and --weights."""
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=True, weights_only=True)
    except Exception as err:  # URLError, HTTPError, OSError, a truncated file ...
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise UserError(f"could not download the {what} from {url} ({first_line(err)}); download the file "
                        f"yourself (into {cache} or anywhere) and pass --weights FILE") from None


def state_dict_mismatch(expected: dict, given: dict, ignore=()) -> str | None:
    """What keeps `given` from loading strictly into a model whose state dict is `expected`, or None:
    keys missing or unexpected, values that are no tensors or of another shape, and NaN or infinite
    values (weights a diverged training wrote: every output they give is NaN)."""
    missing = [k for k in expected if k not in given and k not in ignore]
    unexpected = [k for k in given if k not in expected]
    shared = [k for k in expected if k in given]
    not_tensors = [f"{k} ({type(given[k]).__name__})" for k in shared if not isinstance(given[k], torch.Tensor)]
    tensors = [k for k in shared if isinstance(given[k], torch.Tensor)]
    reshaped = [f"{k} {tuple(given[k].shape)} instead of {tuple(expected[k].shape)}"
                for k in tensors if given[k].shape != expected[k].shape]
    non_finite = [k for k in tensors if given[k].is_floating_point() and not torch.isfinite(given[k]).all()]
    problems = [f"{what} ({len(keys)}): {_some(keys)}"
                for what, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                   ("values that are not tensors", not_tensors),
                                   ("keys with another shape", reshaped),
                                   ("keys with NaN or infinite values", non_finite)) if keys]
    return "; ".join(problems) or None


def _some(keys: list) -> str:
    more = len(keys) - SHOWN_KEYS
    return ", ".join(keys[:SHOWN_KEYS]) + (f", ... and {more} more" if more > 0 else "")
