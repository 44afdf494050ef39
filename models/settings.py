"""The rules of p1_train.py's ViT runs (models/training/settings.py): its flags and config.json, and
the part of a checkpoint's config that rebuilds the model and its inputs.
"""
from data.io import UserError
from data.transforms import AUGMENTATIONS
from .attention import ATTENTION_MODES
from .training.optim import OPTIMIZERS
from .training.settings import (TRAINING_RULES, batch_fits_memory, channel_values, check_required, check_settings,
                                class_names, finite_number, flag_name, one_of, switch, text, whole_number)
from .vit import MODEL_NAMES, image_size_problem, native_image_size


def vit_image_size(value, settings):
    """A positive multiple of the model's patch size, or None for its native size, whose batch of images
    (`batch_size`, 1 without) fits in the memory available: a larger one is killed by the system."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return "must be a whole number"
    return image_size_problem(settings["model"], value) or batch_fits_memory(value, settings)


# What rebuilds a ViT and its inputs: the part of a checkpoint's config that inference reads. In this
# order: a model before its image size, the class count before the class names.
VIT_MODEL_RULES = {
    "model": one_of(MODEL_NAMES), "image_size": vit_image_size, "num_classes": whole_number(1),
    "class_names": class_names, "mean": channel_values(positive=False), "std": channel_values(positive=True),
}
VIT_RUN_RULES = {
    **VIT_MODEL_RULES, **TRAINING_RULES,
    "momentum": finite_number(0), "label_smoothing": finite_number(0, below=1), "optimizer": one_of(OPTIMIZERS),
    "augment": one_of(AUGMENTATIONS), "attention": one_of(ATTENTION_MODES), "weights": text(unset=True),
    "skip_bad_images": switch, "no_pretrained": switch, "cache_images": switch, "compile": switch,
    "grad_checkpointing": switch,
}
VIT_CHECKPOINT_REQUIRED = ("model", "image_size", "num_classes")  # mean, std and class names have defaults
VIT_RUN_REQUIRED = ("model", "image_size", "num_classes", "class_names")  # p1_train.py writes them all


def check_vit_run(settings: dict, name=flag_name) -> dict:
    """p1_train.py's settings by VIT_RUN_RULES and how they go together; returned with an unset image
    size resolved to the model's native one."""
    check_settings(settings, VIT_RUN_RULES, name)
    if settings.get("weights") and settings.get("no_pretrained"):
        raise UserError(f"{name('weights')} and {name('no_pretrained')} contradict each other; give one")
    if settings.get("image_size", 0) is None:
        settings = {**settings, "image_size": native_image_size(settings["model"])}
    return settings


def check_vit_checkpoint_config(config, path) -> dict:
    """The model part of a ViT checkpoint's config by VIT_MODEL_RULES, fields named `path: config 'field'`
    (the settings it was trained with are not read by inference); an unset image size resolved."""
    check_required(config, VIT_CHECKPOINT_REQUIRED, f"{path} is an incomplete checkpoint: it",
                   shown=lambda key: f"config[{key!r}]")
    check_settings(config, VIT_MODEL_RULES, name=lambda key: f"{path}: config {key!r}")
    if config["image_size"] is None:
        config = {**config, "image_size": native_image_size(config["model"])}
    return config
