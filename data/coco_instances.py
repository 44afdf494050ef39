"""COCO instance annotations (`instances_val2017.json` format) and the object masks they describe.

The file is checked entry by entry, so a malformed one is reported as one line naming the entry,
then handed to pycocotools, whose `annToMask` decodes every segmentation: polygons, and run-length
encodings (compressed or not, as crowd regions are stored). The mask of a category in an image is the
union of all its instances there, crowd regions included.
"""
import contextlib
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .coco_captions import check_entry, read_json
from .io import UserError


@dataclass
class Instances:
    path: Path
    coco: object  # pycocotools.coco.COCO
    categories: dict = field(default_factory=dict)  # name -> category id
    file_names: dict = field(default_factory=dict)  # image id -> file name
    present: dict = field(default_factory=dict)  # image id -> set of the category names annotated in it
    colours: dict = field(default_factory=dict)  # image id -> set of the `colour` fields of its annotations
    # (not COCO's: the synthetic captioned set's)


def _check_segmentation(annotation: dict, index: int, where: str, image: dict) -> None:
    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, list):
        if not all(isinstance(polygon, list) and len(polygon) >= 6 and len(polygon) % 2 == 0
                   and all(isinstance(v, (int, float)) and math.isfinite(v) for v in polygon)
                   for polygon in segmentation):
            raise UserError(f"{where}: entry {index} has a polygon that is not a list of at least 3 x, y pairs "
                            "of finite numbers")
    elif isinstance(segmentation, dict):
        size, counts = segmentation.get("size"), segmentation.get("counts")
        if not (isinstance(counts, (list, str)) and isinstance(size, list) and len(size) == 2):
            raise UserError(f"{where}: entry {index} has a run-length encoding without 'counts' and 'size'")
        if size != [image["height"], image["width"]]:
            raise UserError(f"{where}: entry {index} has a run-length encoding of size {size}, its image "
                            f"{image['id']} is {image['height']}x{image['width']} (height, width)")
        if isinstance(counts, list) and sum(c for c in counts if isinstance(c, int)) != size[0] * size[1]:
            raise UserError(f"{where}: entry {index} has a run-length encoding whose counts cover "
                            f"{sum(c for c in counts if isinstance(c, int))} pixels of {size[0] * size[1]}")
    else:
        raise UserError(f"{where}: entry {index} has no 'segmentation' (polygons or run-length encoding)")


def load_instances(path) -> Instances:
    data = read_json(path, "instances file")
    where = f"instances file {path}"
    if not isinstance(data, dict) or not all(isinstance(data.get(key), list)
                                             for key in ("images", "annotations", "categories")):
        raise UserError(f"{where} is not in COCO's instances format: expected an object with 'images', "
                        f"'annotations' and 'categories' lists, as in instances_val2017.json")
    instances = Instances(Path(path), None)
    names = {}
    for index, entry in enumerate(data["categories"]):
        check_entry(entry, index, {"id": int, "name": str}, f"{where}, 'categories'")
        names[entry["id"]] = entry["name"]
        instances.categories[entry["name"]] = entry["id"]
    for index, entry in enumerate(data["images"]):
        check_entry(entry, index, {"id": int, "file_name": str, "height": int, "width": int}, f"{where}, 'images'")
        if entry["width"] < 1 or entry["height"] < 1:
            raise UserError(f"{where}, 'images': entry {index} has a size of {entry['width']}x{entry['height']}; "
                            "width and height must be at least 1")
        instances.file_names[entry["id"]] = entry["file_name"]
        instances.present[entry["id"]] = set()
        instances.colours[entry["id"]] = set()
    images = {entry["id"]: entry for entry in data["images"]}
    seen = {}
    for index, entry in enumerate(data["annotations"]):
        check_entry(entry, index, {"id": int, "image_id": int, "category_id": int}, f"{where}, 'annotations'")
        if entry["id"] in seen:  # pycocotools keeps one per id: the others' masks would be another object's
            raise UserError(f"{where}, 'annotations': entries {seen[entry['id']]} and {index} have the same id "
                            f"{entry['id']}; each annotation needs its own")
        seen[entry["id"]] = index
        if entry["image_id"] not in instances.present:
            raise UserError(f"{where}, 'annotations': entry {index} is for image id {entry['image_id']}, "
                            f"which 'images' does not list")
        if entry["category_id"] not in names:
            raise UserError(f"{where}, 'annotations': entry {index} has category id {entry['category_id']}, "
                            f"which 'categories' does not list")
        _check_segmentation(entry, index, f"{where}, 'annotations'", images[entry["image_id"]])
        instances.present[entry["image_id"]].add(names[entry["category_id"]])
        if isinstance(entry.get("colour"), str):
            instances.colours[entry["image_id"]].add(entry["colour"])
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
        coco.createIndex()
    instances.coco = coco
    return instances


def category_mask(instances: Instances, image_id: int, category: str) -> np.ndarray:
    """(height, width) booleans: the union of the category's instances in the image."""
    coco = instances.coco
    info = coco.imgs[image_id]
    mask = np.zeros((info["height"], info["width"]), dtype=bool)
    annotation_ids = coco.getAnnIds(imgIds=[image_id], catIds=[instances.categories[category]], iscrowd=None)
    for annotation in coco.loadAnns(annotation_ids):
        try:
            decoded = coco.annToMask(annotation)
        except Exception as err:  # pycocotools raises what its C code meets
            raise UserError(f"{instances.path}: cannot decode the segmentation of annotation "
                            f"{annotation['id']}: {err or type(err).__name__}") from None
        if decoded.shape != mask.shape:
            raise UserError(f"{instances.path}: annotation {annotation['id']} has a {decoded.shape[1]}x"
                            f"{decoded.shape[0]} mask in a {mask.shape[1]}x{mask.shape[0]} image")
        mask |= decoded.astype(bool)
    return mask
