"""The captioner's checkpoints: the CATR configuration they were trained with, and loading them.

`scripts/train_captioner.py` writes the repository's checkpoint format (models/checkpoint.py) with
its own marker: `config["catr"]` holds every field of the `CaptionConfig`, so a checkpoint rebuilds
its model alone, whatever configuration it was trained with.
"""
from dataclasses import asdict, fields

from data.io import UserError

from .captioner import CaptionConfig

CAPTION_FORMAT = "catr-captioner-checkpoint-v1"


def config_record(config: CaptionConfig) -> dict:
    """The configuration as the checkpoint's JSON-like record."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(config).items()}


def is_caption_checkpoint(obj) -> bool:
    return isinstance(obj, dict) and obj.get("format") == CAPTION_FORMAT


def checkpoint_config(checkpoint: dict, source: str) -> CaptionConfig:
    """The CaptionConfig a captioner checkpoint records; a missing or unknown field is one line."""
    record = checkpoint.get("config", {}).get("catr") if isinstance(checkpoint.get("config"), dict) else None
    names = {f.name for f in fields(CaptionConfig)}
    if not isinstance(record, dict) or set(record) != names or not isinstance(checkpoint.get("model"), dict):
        raise UserError(f"{source} is an incomplete captioner checkpoint: it lacks the model or its CATR "
                        "configuration")
    return config_from_record(record)


def config_from_record(record: dict) -> CaptionConfig:
    """The CaptionConfig of a `config_record`."""
    return CaptionConfig(**{key: tuple(value) if isinstance(value, list) else value for key, value in record.items()})
