"""The settings of a p1_train.py run and the one set of rules they obey, wherever they come from: the
command line, a run's config.json (hand edits included) or a checkpoint's config. A value that breaks
a rule is one line naming the field and the value; a setting without a rule (from an older or newer
version) passes untouched.
"""
import json
import math

from data.io import UserError
from data.resume import RESUME_FREE_FLAGS
from data.transforms import AUGMENTATIONS
from .attention import ATTENTION_MODES
from .training.optim import OPTIMIZERS, SCHEDULES
from .training.runtime import MAX_SEED, PRECISIONS
from .vit import MODEL_NAMES, native_image_size, patch_size

CHOICES = {"model": MODEL_NAMES, "augment": AUGMENTATIONS, "attention": ATTENTION_MODES,
           "optimizer": OPTIMIZERS, "schedule": SCHEDULES, "precision": PRECISIONS}
WHOLE_NUMBERS = {"epochs": 1, "batch_size": 1, "grad_accum": 1, "num_classes": 1, "patience": 0, "num_workers": 0}
NUMBERS = {"lr": 0, "momentum": 0, "weight_decay": 0, "warmup_epochs": 0, "clip_grad": 0}
SWITCHES = ("skip_bad_images", "no_pretrained", "cache_images", "compile", "grad_checkpointing", "resume",
            "progress")
PATHS = ("data_dir", "output_dir", "weights", "device")
UNSET = ("image_size", "num_workers", "weights", "device")  # None: chosen at start (native size, per device)

# What rebuilds a model and its inputs: the part of a checkpoint's config that inference reads.
MODEL_SETTINGS = ("model", "image_size", "num_classes", "mean", "std", "class_names")
CHECKPOINT_REQUIRED = ("model", "image_size", "num_classes")  # mean, std and class names have defaults
RUN_REQUIRED = ("model", "image_size", "num_classes", "class_names")  # p1_train.py writes them all
TRAINING_STATE = ("epoch", "best_acc", "best_epoch", "history", "optimizer", "scheduler")  # last.pt's, beside the weights
# A resumed run may train longer than its last.pt was set to, and with another patience.
LENGTH_SETTINGS = ("epochs", "patience")


def _shown(value) -> str:
    """A value as its JSON (what a config.json holds): "32" for a string, null, true, NaN."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _problem(key: str, value, settings: dict) -> str | None:
    """What is wrong with `value` as the setting `key` ("must be ..."), or None when nothing is."""
    if value is None and key in UNSET:
        return None
    if key in CHOICES:
        return None if isinstance(value, str) and value in CHOICES[key] else f"must be one of {', '.join(CHOICES[key])}"
    if key in SWITCHES:
        return None if isinstance(value, bool) else "must be true or false"
    if key in PATHS:
        return None if isinstance(value, str) and value else "must be a path"
    if key in WHOLE_NUMBERS or key in ("seed", "image_size"):
        if not isinstance(value, int) or isinstance(value, bool):
            return "must be a whole number"
        if key == "seed":
            return None if 0 <= value <= MAX_SEED else f"must be in 0..{MAX_SEED}"
        if key == "image_size":
            patch = patch_size(settings["model"]) if "model" in settings else 1
            return None if value > 0 and value % patch == 0 else \
                f"must be a positive multiple of {settings.get('model')}'s patch size {patch}"
        return None if value >= WHOLE_NUMBERS[key] else f"must be at least {WHOLE_NUMBERS[key]}"
    if key in NUMBERS or key == "label_smoothing":
        if not _is_number(value) or not math.isfinite(value):
            return "must be a finite number"
        if key == "label_smoothing":
            return None if 0 <= value < 1 else "must be in [0, 1)"
        return None if value >= NUMBERS[key] else f"must be at least {NUMBERS[key]}"
    if key in ("mean", "std"):
        positive = key == "std"
        right = (isinstance(value, (list, tuple)) and len(value) == 3
                 and all(_is_number(v) and math.isfinite(v) and (v > 0 or not positive) for v in value))
        return None if right else f"must be a list of 3 finite numbers{' above 0' if positive else ''}, one per channel"
    if key == "class_names":
        count = settings.get("num_classes")
        right = (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
                 and len(value) == count)
        return None if right else f"must be a list of {count} names, one per class (num_classes)"
    return None


# Checked in this order: a model before its image size, the class count before the class names.
ORDER = ("model", "image_size", "num_classes", "class_names", "mean", "std", "seed", "label_smoothing",
         *WHOLE_NUMBERS, *NUMBERS, *CHOICES, *SWITCHES, *PATHS)


def check_settings(settings: dict, name=lambda key: f"--{key}") -> dict:
    """`settings` checked by the rules, each field called `name(key)` in a refusal; returned with an
    unset image size resolved to the model's native one."""
    for key in dict.fromkeys(ORDER):
        if key in settings:
            problem = _problem(key, settings[key], settings)
            if problem:
                raise UserError(f"{name(key)} {problem}, not {_shown(settings[key])}")
    if settings.get("weights") and settings.get("no_pretrained"):
        raise UserError(f"{name('weights')} and {name('no_pretrained')} contradict each other; give one")
    if "model" in settings and settings.get("image_size", 0) is None:
        settings = {**settings, "image_size": native_image_size(settings["model"])}
    return settings


def _missing(config, required: tuple) -> list:
    return [key for key in required if not isinstance(config, dict) or key not in config]


def check_run_config(config: dict, path) -> dict:
    """A run's config.json (`path`) by the flags' rules, its fields named as `path: 'field'`."""
    missing = _missing(config, RUN_REQUIRED)
    if missing:
        raise UserError(f"{path} lacks {', '.join(map(repr, missing))}")
    return check_settings(config, name=lambda key: f"{path}: {key!r}")


def check_checkpoint_config(config, path) -> dict:
    """The model part of a checkpoint's config by the flags' rules, fields named `path: config 'field'`;
    the rest of its settings (how it was trained) is not read by inference."""
    missing = _missing(config, CHECKPOINT_REQUIRED)
    if missing:
        raise UserError(f"{path} is an incomplete checkpoint: it lacks {', '.join(f'config[{k!r}]' for k in missing)}")
    model = {key: config[key] for key in MODEL_SETTINGS if key in config}
    return {**config, **check_settings(model, name=lambda key: f"{path}: config {key!r}")}


def check_resumed_checkpoint(checkpoint: dict, settings: dict, path, config_path) -> None:
    """A last.pt (`path`, as `models.checkpoint.load_checkpoint` read it) holds a whole training state
    and belongs to the run `settings` describe: the same model and training settings, but for how long
    it trains and how the program runs."""
    missing = _missing(checkpoint, TRAINING_STATE)
    if missing:
        raise UserError(f"{path} lacks the training state ({', '.join(missing)}), as a best.pt does: --resume "
                        "continues from the run's own last.pt")
    free = (*RESUME_FREE_FLAGS, *LENGTH_SETTINGS, "resume")
    written = checkpoint["config"]
    for key, value in settings.items():
        if key in free or key not in written or written[key] == value:
            continue
        raise UserError(f"{path} was written with {key} = {_shown(written[key])}, but {config_path} says "
                        f"{_shown(value)}: it is not this run's checkpoint; move it away to start the run "
                        "again, or train in another --output_dir")
