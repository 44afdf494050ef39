"""The published CATR weights: where they are, and loading them (or a local file) strictly."""
import pickle
from pathlib import Path

import torch

from data.io import UserError

from .captioner import Caption, build_model

WEIGHT_URLS = {
    "v1": "https://github.com/saahiluppal/catr/releases/download/0.1/weights_9348032.pth",
    "v2": "https://github.com/saahiluppal/catr/releases/download/0.2/weight389123791.pth",
    "v3": "https://github.com/saahiluppal/catr/releases/download/0.2/weight493084032.pth",
}
# v2 gave the most accurate captions in the report this repository reproduces.
DEFAULT_VERSION = "v2"
SHOWN_KEYS = 3  # how many offending keys an error message names


def load_model(version: str = DEFAULT_VERSION, weights=None, config: str = "catr",
               device="cpu") -> Caption:
    """The captioner with published weights (`version`) or those of a local `weights` file, in eval mode.

    Published weights are downloaded once into the torch hub cache. A file must hold, like the
    published ones, a dict whose 'model' entry is the state dict.
    """
    if weights is not None:
        checkpoint, source = _read_file(Path(weights)), str(weights)
    else:
        checkpoint, source = _download(version), f"CATR {version} weights"
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise UserError(f"{source} is not a CATR checkpoint: expected a dict with the state dict under 'model'")
    model = build_model(config)
    _check_state_dict(model, checkpoint["model"], source)
    model.load_state_dict(checkpoint["model"], strict=True)
    return model.to(device).eval()


def _download(version: str):
    if version not in WEIGHT_URLS:
        raise UserError(f"unknown CATR version {version!r}; choose one of {', '.join(WEIGHT_URLS)}")
    url = WEIGHT_URLS[version]
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError) as err:
        raise UserError(f"cannot download CATR {version} weights from {url} ({_first_line(err)}); "
                        f"download the file yourself and pass it with --weights FILE") from None


def _read_file(path: Path):
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as err:
        raise UserError(f"{path} is not a CATR checkpoint: torch.load cannot read it ({_load_error(err)})") from None


def _check_state_dict(model: Caption, state_dict: dict, source: str):
    """Name what does not fit, briefly, before load_state_dict would raise its long message."""
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    given = {key: tuple(getattr(value, "shape", ())) for key, value in state_dict.items()}
    missing = [key for key in expected if key not in given]
    unexpected = [key for key in given if key not in expected]
    resized = [f"{key} {given[key]} instead of {shape}" for key, shape in expected.items()
               if key in given and given[key] != shape]
    problems = [f"{what} ({len(keys)}): {_some(keys)}"
                for what, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                   ("keys with another shape", resized)) if keys]
    if problems:
        raise UserError(f"{source} does not match the CATR architecture: {'; '.join(problems)}")


def _some(keys: list) -> str:
    more = len(keys) - SHOWN_KEYS
    return ", ".join(keys[:SHOWN_KEYS]) + (f", ... and {more} more" if more > 0 else "")


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _load_error(err: Exception) -> str:
    """The telling sentence of torch.load's error; its weights-only errors open with a long preamble."""
    lines = str(err).split("WeightsUnpickler error:")[-1].strip().splitlines()
    return lines[0].split(". ")[0] if lines else type(err).__name__
