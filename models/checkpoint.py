"""The one checkpoint format of this repository, and rebuilding a model from a checkpoint alone.

A checkpoint is a dict: `format` (a marker that tells ours from other files), `model` (the state
dict of a package ViT), `config` (model name, image size, class count, normalisation and the training
settings), and the training state (`epoch`, `best_acc`, `optimizer`, `scheduler`, `history`). It is
written atomically and read with `weights_only=True`. Every tensor in it is on the CPU, so a file
written by a GPU run loads anywhere without `map_location`.
"""
import torch

from data.io import UserError, torch_save_atomic
from data.pets import NUM_CLASSES, default_class_names
from data.transforms import MEAN, STD
from .settings import check_vit_checkpoint_config
from .vit import build_vit, load_state_strict
from .weights import read_torch_file

CHECKPOINT_FORMAT = "vit-pets-checkpoint-v1"


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside DistributedDataParallel and torch.compile wrappers."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or model._orig_mod
    return model


def model_config(name: str, image_size: int, num_classes: int = NUM_CLASSES, class_names=None) -> dict:
    """What a checkpoint's config must hold to rebuild the model and its inputs."""
    return {"model": name, "image_size": image_size, "num_classes": num_classes,
            "mean": list(MEAN), "std": list(STD),
            "class_names": list(class_names or default_class_names(num_classes))}


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


def save_checkpoint(path, model, config: dict, format: str = CHECKPOINT_FORMAT, **state) -> None:
    """Write a checkpoint atomically; `model` is a module or a state dict already copied (host_copy).
    `format` marks which program's model it holds (the captioner's has its own)."""
    weights = unwrap(model).state_dict() if isinstance(model, torch.nn.Module) else model
    torch_save_atomic(host_copy({"format": format, "model": weights, "config": config, **state},
                                copy=False), path)


def load_checkpoint_file(path, format: str, program: str) -> dict:
    """Read a checkpoint whose marker is `format`, written by `program`; anything else is one line."""
    ckpt = read_torch_file(path, "checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != format:
        raise UserError(f"{path} is not a checkpoint written by {program} "
                        "(a bare state dict or another program's file)")
    return ckpt


def load_checkpoint(path) -> dict:
    """Read a checkpoint of p1_train.py, its config checked by the rules of the flags; anything else is
    reported as one line."""
    ckpt = load_checkpoint_file(path, CHECKPOINT_FORMAT, "p1_train.py")
    if "model" not in ckpt:
        raise UserError(f"{path} is an incomplete checkpoint: it lacks 'model', the weights")
    return {**ckpt, "config": check_vit_checkpoint_config(ckpt.get("config"), path)}


def model_from_checkpoint(ckpt) -> tuple:
    """(model in eval mode on the CPU, config) rebuilt from a checkpoint dict or path alone."""
    if not isinstance(ckpt, dict):
        source, ckpt = str(ckpt), load_checkpoint(ckpt)
    else:
        source = "the checkpoint"
        ckpt = {**ckpt, "config": check_vit_checkpoint_config(ckpt.get("config"), source)}
    config = ckpt["config"]
    with torch.device("meta"):  # no time spent on random initialisation that is overwritten
        model = build_vit(config["model"], num_classes=config["num_classes"],
                          image_size=config["image_size"], pretrained=False)
    model = model.to_empty(device="cpu")
    load_state_strict(model, ckpt["model"], source, config["model"])
    return model.eval(), config
