"""COCO caption files: annotations in the `captions_val2017.json` format and results files.

Annotations: {"images": [{"id", "file_name", "width", "height", ...}], "annotations": [{"image_id",
"caption", ...}]}. Results, the format COCO's evaluation server takes: [{"image_id", "caption"}].
Anything else is reported as one line naming the file and the entry at fault.
"""
import json
from dataclasses import dataclass, field
from pathlib import Path

from .io import UserError, read_text, warn, write_text_atomic

SHOWN = 3  # how many examples a warning names


@dataclass
class CaptionAnnotations:
    """The annotated images of a COCO caption file and their reference captions."""

    path: Path
    file_names: dict = field(default_factory=dict)  # image id -> file name, for images with captions
    sizes: dict = field(default_factory=dict)  # image id -> (width, height), where the file gives it
    references: dict = field(default_factory=dict)  # image id -> list of reference captions


def read_json(path, what: str):
    path = Path(path)
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{what} {path} is not valid JSON: {err}") from None


def check_entry(entry, index: int, fields: dict, where: str) -> None:
    """`entry` is a dict whose `fields` (name -> type) are present with that type."""
    if not isinstance(entry, dict):
        raise UserError(f"{where}: entry {index} is not an object")
    for name, kind in fields.items():
        if not isinstance(entry.get(name), kind) or isinstance(entry.get(name), bool):
            raise UserError(f"{where}: entry {index} has no {kind.__name__} {name!r}")


def load_annotations(path) -> CaptionAnnotations:
    data = read_json(path, "annotations file")
    where = f"annotations file {path}"
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise UserError(f"{where} is not in COCO's caption format: expected an object with 'images' and "
                        f"'annotations' lists, as in captions_val2017.json")
    annotations = CaptionAnnotations(Path(path))
    for index, entry in enumerate(data["annotations"]):
        check_entry(entry, index, {"image_id": int, "caption": str}, f"{where}, 'annotations'")
        annotations.references.setdefault(entry["image_id"], []).append(entry["caption"])
    repeated_ids = []
    for index, entry in enumerate(data["images"]):
        check_entry(entry, index, {"id": int, "file_name": str}, f"{where}, 'images'")
        if entry["id"] in annotations.file_names:
            repeated_ids.append(entry["id"])
        elif entry["id"] in annotations.references:
            annotations.file_names[entry["id"]] = entry["file_name"]
            if isinstance(entry.get("width"), int) and isinstance(entry.get("height"), int):
                annotations.sizes[entry["id"]] = (entry["width"], entry["height"])
    if not annotations.references:
        raise UserError(f"{where} holds no captions")
    if repeated_ids:
        warn(f"{where}: {len(repeated_ids)} 'images' entries repeat an image id (such as "
             f"{', '.join(map(str, repeated_ids[:SHOWN]))}); the first entry of each id is used")
    shared = shared_file_names(annotations.file_names)
    if shared:
        examples = "; ".join(f"{name}: ids {', '.join(map(str, ids))}" for name, ids in list(shared.items())[:SHOWN])
        warn(f"{where}: {len(shared)} file names are listed under more than one image id ({examples}); "
             "each such image is captioned once and its caption given to every id")
    return annotations


def shared_file_names(file_names: dict) -> dict:
    """File name -> its image ids, for the names that more than one image id lists."""
    ids = {}
    for image_id, name in sorted(file_names.items()):
        ids.setdefault(name, []).append(image_id)
    return {name: listed for name, listed in ids.items() if len(listed) > 1}


def load_results(path, annotations: CaptionAnnotations) -> dict:
    """Image id -> caption, every id one of the annotated images and given once."""
    data = read_json(path, "results file")
    where = f"results file {path}"
    if not isinstance(data, list):
        raise UserError(f"{where} is not a COCO results file: expected a list of "
                        f'{{"image_id": ..., "caption": ...}} objects')
    captions = {}
    for index, entry in enumerate(data):
        check_entry(entry, index, {"image_id": int, "caption": str}, where)
        image_id = entry["image_id"]
        if image_id not in annotations.references:
            raise UserError(f"{where}: entry {index} is for image id {image_id}, which is not among the "
                            f"annotated images of {annotations.path}")
        if image_id in captions:
            raise UserError(f"{where}: image id {image_id} has more than one caption (entries "
                            f"{list(captions).index(image_id)} and {index})")
        captions[image_id] = entry["caption"]
    return captions


def write_results(path, captions: dict) -> None:
    """Write image id -> caption as a results file, sorted by image id, atomically."""
    entries = [{"image_id": image_id, "caption": captions[image_id]} for image_id in sorted(captions)]
    write_text_atomic(path, json.dumps(entries, indent=0, ensure_ascii=False) + "\n")
