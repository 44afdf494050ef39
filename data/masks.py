"""Object masks for localisation scores: `<stem>.png` beside the images' names, in a folder of masks.

A mask is a PNG of its image's size in which non-zero means object; grey, colour and palette masks
are read by their values, never by their alpha channel, and turned upright by their EXIF orientation
as images are. Oxford-IIIT Pet trimaps (`annotations/trimaps/<stem>.png`) hold 1 (pet), 2
(background) and 3 (border): a mask with no 0 and only those values is read as a trimap, pet and
border counting as object. A mask of another size than its image's (after orientation), or without
any object, is left out of localisation with a warning: it cannot say where the object is.
"""
from pathlib import Path

import numpy as np
from PIL import Image

from .images import upright, upright_size
from .io import UserError, some_names, warn

TRIMAP_VALUES = {1, 2, 3}
TRIMAP_BACKGROUND = 2


def object_mask(values: np.ndarray) -> np.ndarray:
    """(H, W) booleans, True on the object, from a mask's raw values ((H, W) or (H, W, channels))."""
    if values.ndim == 3:
        # LA and PA have 2 channels, RGBA 4: the last is alpha, which is no label; any colour channel is.
        colours = values.shape[-1] - (values.shape[-1] in (2, 4))
        values = values[..., :colours].max(axis=-1)
    present = set(np.unique(values).tolist())
    if present <= TRIMAP_VALUES and TRIMAP_BACKGROUND in present:
        return values != TRIMAP_BACKGROUND
    return values != 0


def read_mask(path) -> np.ndarray:
    """The object mask in a PNG file, as (H, W) booleans; palette images by their indices."""
    try:
        with Image.open(path) as image:
            return object_mask(np.asarray(upright(image)))
    except Exception as err:  # as for images: a malformed file can make PIL raise almost any type
        raise UserError(f"cannot read mask {path}: {err or type(err).__name__}") from None


def mask_paths(masks_dir, images) -> list:
    """For each image, `masks_dir/<its stem>.png`, or None where there is no such file."""
    folder = Path(masks_dir)
    if not folder.is_dir():
        raise UserError(f"--masks_dir {masks_dir}: folder not found")
    paths = [folder / f"{Path(image).stem}.png" for image in images]
    return [p if p.is_file() else None for p in paths]


def read_masks(masks_dir, images) -> list:
    """For each image, its object mask as (H, W) booleans, or None where it has no usable mask: missing,
    of another size than the image, or without any object (each kind warned about in one line)."""
    paths = mask_paths(masks_dir, images)
    if all(path is None for path in paths):
        raise UserError(f"--masks_dir {masks_dir} holds no <stem>.png mask for any of the images")
    masks, missing, resized, empty = [], [], [], []
    for image, path in zip(images, paths):
        mask = None if path is None else read_mask(path)
        if mask is None:
            missing.append(Path(image).name)
        elif mask.shape[::-1] != (size := upright_size(image)):
            resized.append(f"{path.name} {mask.shape[1]}x{mask.shape[0]} for {size[0]}x{size[1]}")
            mask = None
        elif not mask.any():
            empty.append(path.name)
            mask = None
        masks.append(mask)
    total = len(images)
    for names, what in ((missing, "have no mask in"), (resized, "have a mask of another size in"),
                        (empty, "have a mask without any object in")):
        if names:
            warn(f"{len(names)} of {total} images {what} {masks_dir} ({some_names(names)}); "
                 "they are left out of localisation only")
    if all(mask is None for mask in masks):
        raise UserError(f"--masks_dir {masks_dir}: none of the {total} images has a usable mask (see the warnings above)")
    return masks
