"""Weight files and state dicts: reading, downloading and comparing them, with one-line errors.

Shared by the ViT loaders (models/vit.py, models/checkpoint.py), CATR's (catr/weights.py) and the checkpoints
(data/checkpoints.py).
"""
from pathlib import Path

import torch

from .io import UserError, some_names


def first_line(err: Exception) -> str:
    """The telling sentence of an error; torch.load's weights-only errors open with a long preamble."""
    lines = str(err).split("WeightsUnpickler error:")[-1].strip().splitlines()
    return lines[0].split(". ")[0] if lines else type(err).__name__


def read_torch_file(path, what: str = "weights file", expected: str = "a readable PyTorch file"):
    """`torch.load` of a local file with `weights_only=True`; a missing or unreadable file is one line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
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
    """What keeps `given` from loading strictly into a model whose state dict is `expected`, or None."""
    missing = [k for k in expected if k not in given and k not in ignore]
    unexpected = [k for k in given if k not in expected]
    reshaped = [f"{k} {tuple(given[k].shape)} instead of {tuple(expected[k].shape)}"
                for k in expected if k in given and given[k].shape != expected[k].shape]
    problems = [f"{what} ({len(keys)}): {some_names(keys)}"
                for what, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                   ("keys with another shape", reshaped)) if keys]
    return "; ".join(problems) or None

