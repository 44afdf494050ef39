"""The settings of scripts/train_captioner.py's runs and their rules (models/training/settings.py):
its flags, its config.json and the part of its checkpoints' config that is not the CATR configuration."""
from data.io import UserError
from models.training.settings import (TRAINING_RULES, check_settings, finite_number, flag_name, image_side, one_of,
                                      switch, text, whole_number)

from .captioner import CONFIGS
from .checkpoint import MIN_IMAGE_SIZE, checked_config
from .decode import MAX_STEPS
from .weights import WEIGHT_URLS


def _data_dir(value, settings):
    return None if isinstance(value, str) and value else "must name the folder of the captions and images"


RUN_RULES = {
    **TRAINING_RULES, "data_dir": _data_dir, "train_split": text(), "val_split": text(),
    "version": one_of(sorted(WEIGHT_URLS)), "weights": text(unset=True), "no_pretrained": switch,
    "config": one_of(sorted(CONFIGS)), "image_size": image_side(MIN_IMAGE_SIZE),
    "freeze_backbone": switch, "cache_features": switch, "closed_vocabulary": switch, "lr_backbone": finite_number(0),
    "score_images": whole_number(0, unset=True), "max_steps": whole_number(1, MAX_STEPS),
}  # the rules of scripts/train_captioner.py's settings


def check_run(settings: dict, name=flag_name) -> dict:
    """The captioner run's settings by RUN_RULES, its recorded CATR configuration (config.json's `catr`)
    and how the settings go together."""
    check_settings(settings, RUN_RULES, name)
    if "catr" in settings:
        checked_config(settings["catr"], name("catr"))
    if settings.get("cache_features") and not settings.get("freeze_backbone"):
        raise UserError(f"{name('cache_features')} needs {name('freeze_backbone')}: a backbone that trains "
                        "changes its features")
    if settings.get("config") != "catr" and not (settings.get("no_pretrained") or settings.get("weights")):
        raise UserError(f"the published weights are of the catr configuration; {name('config')} "
                        f"{settings.get('config')} needs {name('no_pretrained')} or {name('weights')}")
    return settings
