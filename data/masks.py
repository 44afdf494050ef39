"""Object masks for localisation scores: `<stem>.png` beside the images' names, in a folder of masks.

A mask is a PNG of the image's shape (any size: it is matched to the image's grid, not its pixels)
in which non-zero means object. Oxford-IIIT Pet trimaps (`annotations/trimaps/<stem>.png`) hold
1 (pet), 2 (background) and 3 (border): a mask with no 0 and only those values is read as a trimap,
pet and border counting as object.
"""
from pathlib import Path

import numpy as np
from PIL import Image

from .io import UserError

TRIMAP_VALUES = {1, 2, 3}
TRIMAP_BACKGROUND = 2


def object_mask(values: np.ndarray) -> np.ndarray:
    """(H, W) booleans, True on the object, from a mask's raw values ((H, W) or (H, W, channels))."""
    if values.ndim == 3:
        values = values[..., :3].max(axis=-1)  # any colour channel; alpha is not a label
    present = set(np.unique(values).tolist())
    if present <= TRIMAP_VALUES and TRIMAP_BACKGROUND in present:
        return values != TRIMAP_BACKGROUND
    return values != 0


def read_mask(path) -> np.ndarray:
    """The object mask in a PNG file, as (H, W) booleans; palette images by their indices."""
    try:
        with Image.open(path) as image:
            return object_mask(np.asarray(image))
    except Exception as err:  # as for images: a malformed file can make PIL raise almost any type
        raise UserError(f"cannot read mask {path}: {err or type(err).__name__}") from None


def mask_paths(masks_dir, images) -> list:
    """For each image, `masks_dir/<its stem>.png`, or None where there is no such file."""
    folder = Path(masks_dir)
    if not folder.is_dir():
        raise UserError(f"--masks_dir {masks_dir}: folder not found")
    paths = [folder / f"{Path(image).stem}.png" for image in images]
    return [p if p.is_file() else None for p in paths]
