"""A synthetic 37-class stand-in for the Pets split: the embedded default of the demo and the tests.

Each class is a fixed combination of a shape, a colour and a texture, drawn at a random position,
scale and rotation over a noisy background. Classes share each attribute with others, so no single
cue names the class: learnable by a small ViT in minutes, but not trivially.
"""
import colorsys
import math
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .images import MAX_PIXELS, is_image_file
from .io import UserError, atomic_path, make_folder, write_text_atomic
from .pets import NUM_CLASSES

SHAPES = ("circle", "triangle", "square", "star", "cross", "ring")
HUE_STEPS = 13  # hues 28 degrees apart: close enough that colour alone is not a free lunch
TEXTURES = ("solid", "stripes", "dots")
SPLITS = ("train", "val")
DRAW_SCALE = 2  # shapes are drawn at twice the size, then downsampled for smooth edges
MIN_SIZE = 8  # smaller, the shapes and textures are a few pixels and no longer tell the classes apart

# Class k: hue k mod 13 and texture k div 13 make each class unique; its shape (k mod 6) is a further
# cue. The definitions never depend on the data seed.
CLASS_ATTRIBUTES = tuple((SHAPES[k % len(SHAPES)], k % HUE_STEPS, TEXTURES[k // HUE_STEPS])
                         for k in range(NUM_CLASSES))

CLASS_NAMES = tuple(f"{texture} {shape}, hue {round(360 * hue / HUE_STEPS)}"
                    for shape, hue, texture in CLASS_ATTRIBUTES)


ROUND_SHAPES = ("circle", "ring")
RING_HOLE = 0.5  # the ring's inner radius over its outer one


def shape_corners(shape: str, cx: float, cy: float, r: float, angle: float) -> list:
    """The (x, y) corners of a shape that is not round, of radius `r` about (cx, cy), turned by `angle`."""
    if shape == "triangle":
        radii = [r] * 3
    elif shape == "square":
        radii = [r] * 4
    elif shape == "star":
        radii = [r, 0.45 * r] * 5
    else:  # cross: a plus sign traced as 12 corners
        w = 0.35 * r
        pts = [(w, r), (w, w), (r, w), (r, -w), (w, -w), (w, -r),
               (-w, -r), (-w, -w), (-r, -w), (-r, w), (-w, w), (-w, r)]
        cos, sin = math.cos(angle), math.sin(angle)
        return [(cx + x * cos - y * sin, cy + x * sin + y * cos) for x, y in pts]
    n = len(radii)
    return [(cx + rad * math.cos(angle + 2 * math.pi * i / n), cy + rad * math.sin(angle + 2 * math.pi * i / n))
            for i, rad in enumerate(radii)]


def texture_fill(texture: str, size: int, colour: np.ndarray, rng: random.Random) -> np.ndarray:
    """An H x W x 3 fill: the colour, with stripes or dots of a darker shade where asked."""
    fill = np.broadcast_to(colour, (size, size, 3)).astype(np.float32).copy()
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    period = size / rng.uniform(6, 9)
    if texture == "stripes":
        theta = rng.uniform(0, math.pi)
        pattern = np.sin(2 * math.pi * (xx * math.cos(theta) + yy * math.sin(theta)) / period) > 0
    elif texture == "dots":
        pattern = (np.sin(2 * math.pi * xx / period) * np.sin(2 * math.pi * yy / period)) > 0.35
    else:
        return fill
    fill[pattern] *= 0.35
    return fill


def background_colour(rng: random.Random) -> np.ndarray:
    """A random RGB colour (0-255) of low saturation, so that the shapes' colours stand out."""
    return np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.25), rng.uniform(0.3, 0.9))) * 255


def add_grain(pixels: np.ndarray, rng: random.Random) -> np.ndarray:
    """`pixels` (H, W, 3, 0-255) plus Gaussian noise, clipped to 0-255."""
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, 12, pixels.shape)
    return np.clip(pixels + noise, 0, 255)


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, angle: float) -> None:
    """Fill the shape with 255 on a mask being drawn (the ring's hole with 0); `angle` turns corners only."""
    if shape in ROUND_SHAPES:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        if shape == "ring":
            hole = RING_HOLE * r
            draw.ellipse([cx - hole, cy - hole, cx + hole, cy + hole], fill=0)
    else:
        draw.polygon(shape_corners(shape, cx, cy, r, angle), fill=255)


def draw_example_with_mask(label: int, size: int, rng: random.Random) -> tuple:
    """(image, mask): the mask is an 'L' image, 255 where the shape covers at least half a pixel."""
    shape, hue_index, texture = CLASS_ATTRIBUTES[label]
    big = size * DRAW_SCALE
    canvas = add_grain(np.broadcast_to(background_colour(rng), (big, big, 3)), rng)
    hue = (hue_index / HUE_STEPS + rng.uniform(-0.015, 0.015)) % 1.0
    colour = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.7, 1.0), rng.uniform(0.75, 1.0))) * 255
    r = big * rng.uniform(0.22, 0.38)
    cx, cy = (rng.uniform(r, big - r) for _ in range(2))
    mask = Image.new("L", (big, big), 0)
    angle = 0.0 if shape in ROUND_SHAPES else rng.uniform(0, 2 * math.pi)
    draw_shape(ImageDraw.Draw(mask), shape, cx, cy, r, angle)
    alpha = (np.asarray(mask, dtype=np.float32) / 255.0)[..., None]
    canvas = alpha * texture_fill(texture, big, colour, rng) + (1 - alpha) * canvas
    return Image.fromarray(canvas.astype(np.uint8)).resize((size, size), Image.BILINEAR), downsample_mask(mask, size)


def coverage(mask: Image.Image, size: int) -> np.ndarray:
    """(size, size) floats in 0-1: how much of each pixel a mask drawn at DRAW_SCALE times `size` covers."""
    return np.asarray(mask.resize((size, size), Image.BILINEAR), dtype=np.float32) / 255


def downsample_mask(mask: Image.Image, size: int) -> Image.Image:
    """A mask drawn at DRAW_SCALE times `size`, at `size`: 255 where the shape covers half a pixel or more."""
    return Image.fromarray(np.where(coverage(mask, size) >= 0.5, 255, 0).astype(np.uint8))


def check_size(size: int, smallest: int) -> None:
    """An image side from `smallest` up to what the repository reads back (data.images.MAX_PIXELS): a
    larger image is drawn at DRAW_SCALE times its side, and would exhaust the memory first."""
    largest = math.isqrt(MAX_PIXELS)
    if not smallest <= size <= largest:
        raise UserError(f"the image size must be in {smallest}..{largest} pixels (images of at most "
                        f"{MAX_PIXELS:,} pixels are read back), not {size}")


def save_png(image: Image.Image, path: Path) -> None:
    """Write a made image. Atomic, so a kill leaves no half image; not flushed one by one (several
    milliseconds a file: a set cut by a power loss is simply made again); zlib's fastest level, which
    keeps every pixel and takes a fraction of the default's time on these small images."""
    with atomic_path(path, durable=False) as tmp:
        image.save(tmp, format="PNG", compress_level=1)


def make_synthetic_split(out_dir, seed: int = 0, size: int = 64, train_per_class: int = 40,
                         val_per_class: int = 10, masks: bool = False) -> Path:
    """Write OUT/train and OUT/val with files `{label}_{id}.png`, ids numbered like the Pets split,
    and OUT/classes.txt naming the classes; with `masks`, also OUT/val_masks/{label}_{id}.png, each
    validation image's shape (255 on the object, 0 elsewhere). The images are the same either way.
    A folder that already holds images is refused: old and new images of another seed or size would mix."""
    check_size(size, MIN_SIZE)
    if train_per_class < 0 or val_per_class < 0 or train_per_class + val_per_class == 0:
        raise UserError("the images per class must not be negative, and at least one split needs some")
    out_dir = Path(out_dir)
    for split in SPLITS:
        folder = out_dir / split
        if folder.is_dir() and any(is_image_file(p) for p in folder.iterdir()):
            raise UserError(f"{folder} already holds images; remove it or choose another folder")
    out_dir = make_folder(out_dir)
    write_text_atomic(out_dir / "classes.txt", "\n".join(CLASS_NAMES) + "\n")
    rng = random.Random(seed)
    next_id = 0
    for split, per_class in zip(SPLITS, (train_per_class, val_per_class)):
        folder = make_folder(out_dir / split)
        mask_folder = make_folder(out_dir / "val_masks") if masks and split == "val" else None
        for _ in range(per_class):
            for label in range(NUM_CLASSES):
                image, mask = draw_example_with_mask(label, size, rng)
                save_png(image, folder / f"{label}_{next_id}.png")
                if mask_folder is not None:
                    save_png(mask, mask_folder / f"{label}_{next_id}.png")
                next_id += 1
    return out_dir


def pets_sized_image(seed: int = 0) -> np.ndarray:
    """A 375 x 500 RGB array whose JPEG is about a Pets file's size: smooth colour fields plus grain."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (19, 25, 3), dtype=np.uint8)).resize((500, 375), Image.BICUBIC)
    grain = rng.integers(-12, 13, (375, 500, 3))
    return np.clip(np.asarray(coarse, dtype=np.int16) + grain, 0, 255).astype(np.uint8)


def write_pets_sized_jpegs(folder, count: int, first_id: int = 0, labeled: bool = False) -> Path:
    """`count` distinct 500 x 375 JPEGs in `folder`: `{id}.jpg`, or `{id % 37}_{id}.jpg` when labeled.

    For timing what loading real photos costs (decoding a JPEG of this size, then cropping it),
    which the small drawn images above do not show."""
    folder = make_folder(folder)
    base = pets_sized_image()
    for i in range(first_id, first_id + count):  # shifted so no two files are equal
        name = f"{i % NUM_CLASSES}_{i}.jpg" if labeled else f"{i}.jpg"
        with atomic_path(folder / name, durable=False) as tmp:
            Image.fromarray(np.roll(base, i, axis=1)).save(tmp, format="JPEG", quality=90)
    return folder
