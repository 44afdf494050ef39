"""Finding image files in a folder and opening any of them as RGB.

Images are turned upright from their EXIF orientation, as photo viewers show them. An image of more
than MAX_PIXELS pixels is refused like a corrupt one: such a size is far beyond any photo a ViT sees
after resizing, and a small compressed file that decodes to it (a "decompression bomb") would
exhaust the memory.
"""
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .io import UserError, some_names, warn

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
# 100 megapixels: a 30- or 50-megapixel camera photo opens; 300 MB as 8-bit RGB once decoded.
MAX_PIXELS = 100_000_000


def is_image_file(path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder) -> list:
    """The image files directly in `folder`, sorted by name; other files are skipped with a warning."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"folder not found: {folder}")
    try:
        entries = sorted(folder.iterdir())
    except OSError as err:
        raise UserError(f"cannot read the folder {folder}: {err.strerror or err}") from None
    images, hidden, dangling = [], [], []
    for path in entries:
        if path.name.startswith("."):
            hidden.append(path.name)
        elif path.is_symlink() and not path.exists():
            dangling.append(path.name)
        elif not path.is_file():
            continue  # sub-folders are not part of the set
        elif is_image_file(path):
            images.append(path)
        else:
            warn(f"skipping {path} (not a .jpg/.jpeg/.png image)")
    if hidden:
        warn(f"skipping {_count(hidden, 'hidden file')} in {folder}: {some_names(hidden)}")
    if dangling:
        warn(f"skipping {_count(dangling, 'link')} to nothing in {folder}: {some_names(dangling)}")
    if not images:
        raise UserError(f"no .jpg/.jpeg/.png images in {folder}")
    return images


def _count(names: list, what: str) -> str:
    return f"{len(names)} {what}{'s' if len(names) > 1 else ''}"


def open_rgb(path) -> Image.Image:
    """Decode an image fully and return it upright in RGB, whatever its mode (L, P, RGBA, CMYK, I;16 ...)."""
    try:
        with warnings.catch_warnings():
            # PIL warns (and over twice its own limit raises) about large images; MAX_PIXELS decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                _check_size(path, image.size)
                image.load()  # decode now so a truncated file fails here, naming the file
                image = upright(image)
                if image.mode == "P" and "transparency" in image.info:
                    image = image.convert("RGBA")  # palette transparency must go through RGBA
                if image.mode.startswith(("I", "F")):  # 16-bit or float grayscale: to 0..255
                    image = Image.fromarray(_grey_bytes(np.asarray(image, dtype=np.float32), image.mode), mode="L")
                return image.convert("RGB")
    except FileNotFoundError:
        raise UserError(f"image not found: {path}") from None
    except UserError:
        raise
    except Image.DecompressionBombError:
        raise UserError(f"cannot read image {path}: more than {MAX_PIXELS:,} pixels") from None
    except Exception as err:  # a malformed file can make PIL's decoders raise almost any type
        raise UserError(f"cannot read image {path}: {err or type(err).__name__}") from None


def _grey_bytes(values: np.ndarray, mode: str) -> np.ndarray:
    """Grey levels 0..255 of integer (0..65535) or float pixels. A float image has no fixed scale: one
    within 0..1 (a float TIFF's usual scale) or within 0..255 (8-bit levels stored as floats) is read on
    that scale, any other is stretched from its lowest to its highest value."""
    finite = values[np.isfinite(values)]
    if mode != "F":
        scaled = values / 257.0
    elif not finite.size:
        scaled = np.zeros_like(values)
    elif finite.min() >= 0 and finite.max() <= 1:
        scaled = values * 255.0
    elif finite.min() >= 0 and finite.max() <= 255:
        scaled = values
    else:
        scaled = (values - finite.min()) * (255.0 / (finite.max() - finite.min()))
    return np.clip(np.nan_to_num(scaled), 0, 255).astype(np.uint8)


def open_or_skip(path, skip_bad_images: bool):
    """`open_rgb(path)`; for a file that cannot be read, None after a warning with `skip_bad_images`,
    else one line that says how to leave such files out."""
    try:
        return open_rgb(path)
    except UserError as err:
        if not skip_bad_images:
            raise UserError(f"{err} (--skip_bad_images leaves such images out)") from None
        warn(f"{err}; skipped")
        return None


def _check_size(path, size: tuple) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise UserError(f"cannot read image {path}: {width}x{height} is {width * height / 1e6:.0f} megapixels, "
                        f"more than the limit of {MAX_PIXELS / 1e6:.0f} (data.images.MAX_PIXELS)")


# EXIF orientations that turn an image by 90 degrees: its upright width is its stored height.
TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)
ORIENTATION_TAG = 0x0112


def upright_size(path) -> tuple:
    """(width, height) of an image file as `open_rgb` returns it, read from its header alone."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            try:
                orientation = image.getexif().get(ORIENTATION_TAG)
            except Exception:  # unreadable EXIF: shown as stored (see upright)
                orientation = None
    except Exception as err:  # as in open_rgb: a malformed file can make PIL raise almost any type
        raise UserError(f"cannot read image {path}: {err or type(err).__name__}") from None
    return (height, width) if orientation in TRANSPOSED_ORIENTATIONS else (width, height)


def upright(image: Image.Image) -> Image.Image:
    """The image rotated and flipped as its EXIF orientation tag says."""
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception:  # unreadable EXIF: viewers show such a photo as stored, and so do we
        pass
    return image


def check_unique_stems(paths) -> None:
    """Figures are named after their image's stem: bike.jpg and bike.png would overwrite each other's."""
    by_stem = {}
    for path in map(Path, paths):
        if path.stem in by_stem:
            raise UserError(f"{by_stem[path.stem]} and {path} are both named {path.stem!r}: their figures "
                            "would overwrite each other")
        by_stem[path.stem] = path
