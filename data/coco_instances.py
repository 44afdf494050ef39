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


def rle_counts(counts) -> list:
    """The run lengths of a run-length encoding's `counts`: a list as given, or decoded from COCO's
    compressed string (pycocotools' maskApi.c): each number is characters '0'..'o' of six bits, five of
    value, least significant first, and a sixth that says another follows; the last one's fifth value bit
    is the sign, and from the fourth number on each is a difference from the number two before it. None
    where the string is not one."""
    if isinstance(counts, list):
        return counts
    numbers, value, shift = [], 0, 0
    for char in counts:
        code = ord(char) - ord("0")
        if not 0 <= code < 64:
            return None
        value |= (code & 0x1f) << shift
        shift += 5
        if code & 0x20:
            continue
        if code & 0x10:
            value -= 1 << shift
        numbers.append(value + (numbers[-2] if len(numbers) > 2 else 0))
        value, shift = 0, 0
    return None if shift else numbers


def _check_segmentation(annotation: dict, index: int, where: str, image: dict) -> None:
    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, list):
        if not segmentation:
            raise UserError(f"{where}: entry {index} has a segmentation that is an empty list (no polygon)")
        if not all(isinstance(polygon, list) and len(polygon) >= 6 and len(polygon) % 2 == 0
                   and all(isinstance(v, (int, float)) and math.isfinite(v) for v in polygon)
                   for polygon in segmentation):
            raise UserError(f"{where}: entry {index} has a polygon that is not a list of at least 3 x, y pairs "
                            "of finite numbers")
        # pycocotools draws every edge at 5 points a pixel in C ints: a point 1e8 pixels away costs a minute
        # and gigabytes, 1e9 crashes the process. No drawing of the image's object lies that far out.
        width, height = image["width"], image["height"]
        for x, y in ((x, y) for polygon in segmentation for x, y in zip(polygon[::2], polygon[1::2])):
            if not (-width <= x <= 2 * width and -height <= y <= 2 * height):
                raise UserError(f"{where}: entry {index} has a polygon point ({x}, {y}) more than the image's "
                                f"size outside its {width}x{height} image {image['id']}")
    elif isinstance(segmentation, dict):
        size, counts = segmentation.get("size"), segmentation.get("counts")
        if not (isinstance(counts, (list, str)) and isinstance(size, list) and len(size) == 2):
            raise UserError(f"{where}: entry {index} has a run-length encoding without 'counts' and 'size'")
        if size != [image["height"], image["width"]]:
            raise UserError(f"{where}: entry {index} has a run-length encoding of size {size}, its image "
                            f"{image['id']} is {image['height']}x{image['width']} (height, width)")
        runs = rle_counts(counts)
        if runs is None or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in runs):
            raise UserError(f"{where}: entry {index} has a run-length encoding whose counts are not run lengths "
                            "(whole numbers of at least 0, listed or in COCO's compressed string)")
        if sum(runs) != size[0] * size[1]:
            raise UserError(f"{where}: entry {index} has a run-length encoding whose counts cover "
                            f"{sum(runs)} pixels of {size[0] * size[1]}")
    else:
        raise UserError(f"{where}: entry {index} has no 'segmentation' (polygons or run-length encoding)")


def _checked_entries(data: dict, key: str, fields: dict, unique: tuple, where: str) -> list:
    """`data[key]`, each entry holding `fields` (name -> type) and its own value of each `unique` field:
    pycocotools keeps one entry per id, so the others' masks or sizes would silently be another's; a
    category name of two ids would be graded against one id's masks only."""
    where = f"{where}, {key!r}"
    seen = {name: {} for name in unique}
    for index, entry in enumerate(data[key]):
        check_entry(entry, index, fields, where)
        for name in unique:
            if entry[name] in seen[name]:
                raise UserError(f"{where}: entries {seen[name][entry[name]]} and {index} have the same {name} "
                                f"{entry[name]!r}; each needs its own")
            seen[name][entry[name]] = index
    return data[key]


def load_instances(path) -> Instances:
    data = read_json(path, "instances file")
    where = f"instances file {path}"
    if not isinstance(data, dict) or not all(isinstance(data.get(key), list)
                                             for key in ("images", "annotations", "categories")):
        raise UserError(f"{where} is not in COCO's instances format: expected an object with 'images', "
                        f"'annotations' and 'categories' lists, as in instances_val2017.json")
    instances = Instances(Path(path), None)
    categories = _checked_entries(data, "categories", {"id": int, "name": str}, ("id", "name"), where)
    images = {entry["id"]: entry for entry in _checked_entries(
        data, "images", {"id": int, "file_name": str, "height": int, "width": int}, ("id",), where)}
    annotations = _checked_entries(data, "annotations", {"id": int, "image_id": int, "category_id": int},
                                   ("id",), where)
    names = {entry["id"]: entry["name"] for entry in categories}
    instances.categories = {entry["name"]: entry["id"] for entry in categories}
    for index, entry in enumerate(images.values()):
        if entry["width"] < 1 or entry["height"] < 1:
            raise UserError(f"{where}, 'images': entry {index} has a size of {entry['width']}x{entry['height']}; "
                            "width and height must be at least 1")
        instances.file_names[entry["id"]] = entry["file_name"]
        instances.present[entry["id"]] = set()
        instances.colours[entry["id"]] = set()
    for index, entry in enumerate(annotations):
        if entry["image_id"] not in images:
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
