"""Finding image files in a folder and opening any of them as RGB."""
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .io import UserError, warn

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def is_image_file(path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder) -> list:
    """The image files directly in `folder`, sorted by name; other files are skipped with a warning."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"folder not found: {folder}")
    images = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        if is_image_file(path):
            images.append(path)
        else:
            warn(f"skipping {path} (not a .jpg/.jpeg/.png image)")
    if not images:
        raise UserError(f"no .jpg/.jpeg/.png images in {folder}")
    return images


def open_rgb(path) -> Image.Image:
    """Decode an image fully and return it in RGB, whatever its mode (L, P, RGBA, CMYK, I;16 ...)."""
    try:
        with Image.open(path) as image:
            image.load()  # decode now so a truncated file fails here, naming the file
            if image.mode == "P" and "transparency" in image.info:
                image = image.convert("RGBA")  # palette transparency must go through RGBA
            if image.mode.startswith(("I", "F")):  # 16-bit or float grayscale: scale 0..65535 to 0..255
                scaled = np.clip(np.asarray(image, dtype=np.float32) / 257.0, 0, 255)
                image = Image.fromarray(scaled.astype(np.uint8), mode="L")
            return image.convert("RGB")
    except FileNotFoundError:
        raise UserError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(f"cannot read image {path}: {err}") from None
