"""The settings of a training run and the one way they are checked, wherever they come from: the
command line, a run's config.json (hand edits included) or a checkpoint's config. A table of rules,
one per setting, says what each may hold; a value that breaks its rule is one line naming the field
and the value. A setting without a rule (from an older or newer version) passes untouched.

Here: the rules, the table every training script shares, and the check that a last.pt belongs to
its run. The ViT's tables are in models/settings.py, the captioner's in catr/checkpoint.py and
catr/training_settings.py.
"""
import json
import math

from data.datasets import available_memory
from data.io import UserError
from data.resume import CHANGEABLE_ON_RESUME
from .optim import SCHEDULES
from .runtime import MAX_SEED, PRECISIONS


def shown(value) -> str:
    """A value as its JSON (what a config.json holds): "32" for a string, null, true, NaN."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# A rule is rule(value, settings) -> None when the value is right, else what it must be ("must be ...").

def whole_number(low: int, high: int | None = None, unset: bool = False):
    """A whole number in low..high (no upper bound without `high`); None too with `unset`."""
    def rule(value, settings):
        if value is None and unset:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            return "must be a whole number"
        if high is not None and not low <= value <= high:
            return f"must be in {low}..{high}"
        return None if value >= low else f"must be at least {low}"
    return rule


def batch_fits_memory(side: int, settings) -> str | None:
    """None when a batch of `batch_size` (1 without) uint8 RGB images of `side` x `side` pixels fits in
    the memory available, else what the side must do: a batch larger than the memory is killed by the
    system, or fails as a MemoryError, at its first image."""
    batch = settings.get("batch_size")
    batch = batch if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0 else 1
    needed = batch * 3 * side * side  # the loader's uint8 batch alone, before any activation
    available, limit = available_memory()
    if needed > available:
        return (f"must fit in memory: a batch of {batch} images of {side}x{side} takes at least "
                f"{needed / 1e9:.3g} GB, and {available / 1e9:.3g} GB is available ({limit})")
    return None


def image_side(low: int):
    """An image side of at least `low` pixels whose batch fits in memory (`batch_fits_memory`), or None
    for the model's own."""
    whole = whole_number(low, unset=True)

    def rule(value, settings):
        return whole(value, settings) or (None if value is None else batch_fits_memory(value, settings))
    return rule


def finite_number(low: float, below: float | None = None):
    """A finite number of at least `low`, and under `below` when given."""
    def rule(value, settings):
        if not _is_number(value) or not math.isfinite(value):
            return "must be a finite number"
        if below is not None and not low <= value < below:
            return f"must be in [{low:g}, {below:g})"
        return None if value >= low else f"must be at least {low:g}"
    return rule


def one_of(choices):
    def rule(value, settings):
        return None if isinstance(value, str) and value in choices else f"must be one of {', '.join(choices)}"
    return rule


def switch(value, settings):
    return None if isinstance(value, bool) else "must be true or false"


def text(unset: bool = False):
    """A non-empty string (a path, a name); None too with `unset`."""
    def rule(value, settings):
        if value is None and unset:
            return None
        return None if isinstance(value, str) and value else "must be a path or name"
    return rule


def channel_values(positive: bool):
    def rule(value, settings):
        right = (isinstance(value, (list, tuple)) and len(value) == 3
                 and all(_is_number(v) and math.isfinite(v) and (v > 0 or not positive) for v in value))
        return None if right else f"must be a list of 3 finite numbers{' above 0' if positive else ''}, one per channel"
    return rule


def class_names(value, settings):
    count = settings.get("num_classes")
    right = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value) and len(value) == count
    return None if right else f"must be a list of {count} names, one per class (num_classes)"


# What every training script's run holds.
TRAINING_RULES = {
    "data_dir": text(), "output_dir": text(),
    "epochs": whole_number(1), "batch_size": whole_number(1), "grad_accum": whole_number(1),
    "patience": whole_number(0), "num_workers": whole_number(0, unset=True), "seed": whole_number(0, MAX_SEED),
    "lr": finite_number(0), "weight_decay": finite_number(0), "warmup_epochs": finite_number(0),
    "clip_grad": finite_number(0), "schedule": one_of(SCHEDULES), "precision": one_of(PRECISIONS),
    "device": text(unset=True), "resume": switch, "progress": switch, "save_every": whole_number(0),
}
# The counts and seed both explanation evaluations take (scripts/eval_explanations.py, eval_grounding.py).
EVALUATION_RULES = {"limit": whole_number(1, unset=True), "resamples": whole_number(1),
                    "sanity_images": whole_number(0), "seed": TRAINING_RULES["seed"]}
# last.pt's training state beside the weights (best.pt holds none of the optimizer's).
TRAINING_STATE = ("epoch", "best_epoch", "history", "optimizer", "scheduler")


def flag_name(key: str) -> str:
    return f"--{key}"


def check_settings(settings: dict, rules: dict, name=flag_name) -> None:
    """Each setting of `settings` that `rules` has a rule for obeys it; else one line, the field called
    `name(key)`."""
    for key, rule in rules.items():
        if key in settings:
            problem = rule(settings[key], settings)
            if problem:
                raise UserError(f"{name(key)} {problem}, not {shown(settings[key])}")


def check_required(config, required: tuple, what: str, shown=repr) -> None:
    """`config` is a dict holding every one of `required`; else one line, "`what` lacks ...", each
    missing key written `shown(key)`."""
    missing = [key for key in required if not isinstance(config, dict) or key not in config]
    if missing:
        raise UserError(f"{what} lacks {', '.join(map(shown, missing))}")


def check_resumed_checkpoint(checkpoint: dict, settings: dict, path, config_path) -> None:
    """A last.pt (`path`) holds a whole training state and belongs to the run `settings` describe (its
    `config_path`): the same model and training settings, but for how long it trains and how the
    program runs."""
    missing = [key for key in TRAINING_STATE if key not in checkpoint]
    if missing:
        raise UserError(f"{path} lacks the training state ({', '.join(missing)}), as a best.pt does: --resume "
                        "continues from the run's own last.pt")
    written = checkpoint.get("config") if isinstance(checkpoint.get("config"), dict) else {}
    for key, value in settings.items():
        if key in CHANGEABLE_ON_RESUME or key not in written or written[key] == value:
            continue
        raise UserError(f"{path} was written with {key} = {shown(written[key])}, but {config_path} says "
                        f"{shown(value)}: it is not this run's checkpoint; move it away to start the run "
                        "again, or train in another --output_dir")
