"""p1_train.py's checkpoints (data/checkpoints.py's file format), and rebuilding a ViT from one alone.

`model` holds the state dict of a package ViT, `config` the model name, image size, class count,
normalisation, class names and the training settings, beside the training state (`epoch`,
`best_acc`, `optimizer`, `scheduler`, `history`).
"""
import torch

from data.checkpoints import load_checkpoint_file, write_checkpoint
from data.io import UserError
from data.pets import NUM_CLASSES, class_names_or_default
from data.transforms import MEAN, STD, normalization
from .settings import check_vit_checkpoint_config
from .vit import build_vit, load_state_strict, set_input_config

CHECKPOINT_FORMAT = "vit-pets-checkpoint-v1"


def model_config(name: str, image_size: int, num_classes: int = NUM_CLASSES, class_names=None) -> dict:
    """What a checkpoint's config must hold to rebuild the model and its inputs."""
    return {"model": name, "image_size": image_size, "num_classes": num_classes,
            "mean": list(MEAN), "std": list(STD),
            "class_names": class_names_or_default(class_names, num_classes)}


def save_checkpoint(path, model, config: dict, **state) -> None:
    """Write a checkpoint of p1_train.py's format; `model` is a module or a state dict already copied."""
    write_checkpoint(path, CHECKPOINT_FORMAT, model, config, **state)


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
    set_input_config(model, *normalization(config))
    return model.eval(), config
