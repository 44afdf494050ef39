"""Checkpoint files of any model trained here: a dict with a `format` marker that tells one program's
files from another's, the weights under `model`, the settings under `config` and any training state
beside them. Written atomically and read with `weights_only=True`; every tensor in one is on the CPU,
so a file written by a GPU run loads anywhere without `map_location`.

The ViT's format and rebuilding are in models/checkpoint.py, the captioner's in catr/checkpoint.py.
"""
import torch

from .io import UserError, torch_save_atomic
from .weights import read_torch_file


def host_copy(obj, copy: bool = True):
    """`obj` (tensors in dicts, lists and tuples) with every tensor on the CPU. With `copy`, CPU
    tensors are copied too: a snapshot that later training steps, which update weights in place,
    cannot change."""
    if torch.is_tensor(obj):
        return obj.detach().to("cpu", copy=copy)
    if isinstance(obj, dict):
        return {key: host_copy(value, copy) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(host_copy(value, copy) for value in obj)
    return obj


def write_checkpoint(path, format: str, model, config: dict, **state) -> None:
    """Write a checkpoint of `format` atomically; `model` is a module or a state dict already copied
    (host_copy)."""
    weights = model.state_dict() if isinstance(model, torch.nn.Module) else model
    torch_save_atomic(host_copy({"format": format, "model": weights, "config": config, **state}, copy=False), path)


def load_checkpoint_file(path, format: str, program: str) -> dict:
    """Read a checkpoint whose marker is `format`, written by `program`; anything else is one line."""
    ckpt = read_torch_file(path, "checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != format:
        raise UserError(f"{path} is not a checkpoint written by {program} "
                        "(a bare state dict or another program's file)")
    return ckpt
