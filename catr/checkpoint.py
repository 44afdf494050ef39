"""The captioner's checkpoints: the CATR configuration they were trained with, and loading them.

`scripts/train_captioner.py` writes the repository's checkpoint format (models/checkpoint.py) with
its own marker: `config["catr"]` holds every field of the `CaptionConfig`, so a checkpoint rebuilds
its model alone, whatever configuration it was trained with. That record, in a checkpoint or in a
run's config.json, is checked by the settings' rules (models/training/settings.py): a hand edit is
one line naming the field.
"""
from dataclasses import asdict, fields

from data.io import UserError
from models.training.settings import check_settings, finite_number, whole_number

from .captioner import CaptionConfig

MIN_IMAGE_SIZE = 16  # the ResNet's output stride: a smaller longer side leaves no feature cell
# Every field of CaptionConfig but the ResNet's stages (a list of 4 stage depths, checked apart).
RECORD_RULES = {
    **{f.name: whole_number(1) for f in fields(CaptionConfig) if f.name not in ("resnet_layers", "dropout")},
    "image_size": whole_number(MIN_IMAGE_SIZE), "dropout": finite_number(0, below=1),
}

CAPTION_FORMAT = "catr-captioner-checkpoint-v1"


def config_record(config: CaptionConfig) -> dict:
    """The configuration as the checkpoint's JSON-like record."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(config).items()}


def is_caption_checkpoint(obj) -> bool:
    return isinstance(obj, dict) and obj.get("format") == CAPTION_FORMAT


def checkpoint_config(checkpoint: dict, source: str) -> CaptionConfig:
    """The CaptionConfig a captioner checkpoint records; a missing, unknown or wrong field is one line."""
    record = checkpoint.get("config", {}).get("catr") if isinstance(checkpoint.get("config"), dict) else None
    if not isinstance(record, dict) or not isinstance(checkpoint.get("model"), dict):
        raise UserError(f"{source} is an incomplete captioner checkpoint: it lacks the model or its CATR "
                        "configuration")
    return checked_config(record, f"{source}: config['catr']")


def checked_config(record, where: str) -> CaptionConfig:
    """The CaptionConfig of a record (a checkpoint's or a config.json's `catr`), its fields checked,
    each named `where` 'field' in a refusal."""
    names = [f.name for f in fields(CaptionConfig)]
    if not isinstance(record, dict) or sorted(record) != sorted(names):
        raise UserError(f"{where} must hold the CATR configuration's fields {', '.join(names)}")
    check_settings(record, RECORD_RULES, name=lambda key: f"{where} {key!r}")
    stages = record["resnet_layers"]
    if not (isinstance(stages, (list, tuple)) and len(stages) == 4
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in stages)):
        raise UserError(f"{where} 'resnet_layers' must be a list of 4 stage depths of at least 1, not {stages!r}")
    if record["hidden_dim"] % record["nheads"]:
        raise UserError(f"{where} 'hidden_dim' {record['hidden_dim']} must be a multiple of 'nheads' "
                        f"{record['nheads']}: each attention head takes an equal part")
    return config_from_record(record)


def config_from_record(record: dict) -> CaptionConfig:
    """The CaptionConfig of a `config_record`."""
    return CaptionConfig(**{key: tuple(value) if isinstance(value, list) else value for key, value in record.items()})
