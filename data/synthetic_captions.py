"""A synthetic captioned set in COCO's format: scenes of 1-3 coloured shapes, their captions and outlines.

Each scene holds 1-3 shapes of the problem-1 kinds (`data.synthetic.SHAPES`), each in one of a few
named colours and no two alike, placed apart from each other on a grainy background that is plain,
striped or dotted. Every caption names every shape with its colour, in several phrasings; a spatial
word ("left of", "above", "from left to right") is used only where the shapes' boxes lie apart along
that axis, so it is true of the picture.

Layout, as COCO 2017 has it: OUT/train/ and OUT/val/ hold `{image id:012d}.png`; OUT/annotations/ holds
`captions_{split}.json` and `instances_{split}.json` (each shape's polygon, box, area and category,
the categories being the shape kinds, plus a non-COCO `colour` field), and `object_words.txt`, the
word table of `scripts/eval_grounding.py --words` (`category: word, word`, each shape's singular and
plural), for grading word maps.
"""
import colorsys
import json
import math
import random
from dataclasses import dataclass
from itertools import permutations
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .images import is_image_file
from .io import UserError, make_folder, write_text_atomic
from .synthetic import (DRAW_SCALE, RING_HOLE, ROUND_SHAPES, SHAPES, SPLITS, TEXTURES, add_grain, background_colour,
                        check_size, coverage, draw_shape, save_png, shape_corners, texture_fill)

COLOURS = {"red": 0, "orange": 30, "yellow": 58, "green": 125, "blue": 220, "purple": 285}  # hue, degrees
HUE_JITTER = 6  # degrees either way: the named hues stay at least 16 degrees apart (orange, yellow)
CATEGORIES = tuple({"id": index + 1, "name": shape, "supercategory": "shape"} for index, shape in enumerate(SHAPES))
PLURALS = {shape: shape + ("es" if shape.endswith("s") else "s") for shape in SHAPES}
BACKGROUND_WORDS = {"solid": "plain", "stripes": "striped", "dots": "dotted"}
CAPTIONS_PER_IMAGE = 5  # as COCO has
MAX_SHAPES = 3
MIN_SIZE = 48  # smaller, three shapes apart from each other are a few pixels wide
RADIUS_RANGE = (0.10, 0.17)  # of the side: 13-22 px at 128
GAP = 0.03  # of the side, between the circles around two shapes
CIRCLE_CORNERS = 48  # a round outline's polygon: within 0.3% of the radius of the true circle
DEFAULT_TRAIN, DEFAULT_VAL, DEFAULT_SIZE = 800, 50, 128
WORDS_FILE = "object_words.txt"


@dataclass
class SceneShape:
    kind: str
    colour: str
    cx: float  # centre and radius in the coordinates of the COCO polygons
    cy: float
    r: float
    angle: float
    mask: np.ndarray  # (size, size) booleans: where the drawn shape covers half a pixel or more

    @property
    def name(self) -> str:
        return f"{self.colour} {self.kind}"

    def outline(self) -> list:
        """The shape's outline as one COCO polygon [x1, y1, x2, y2, ...]. A ring is traced as a keyhole
        (outer circle, a cut to the hole, the hole the other way round) since COCO polygons have no holes."""
        if self.kind in ROUND_SHAPES:
            turns = [2 * math.pi * i / CIRCLE_CORNERS for i in range(CIRCLE_CORNERS + 1)]
            points = [(self.cx + self.r * math.cos(t), self.cy + self.r * math.sin(t)) for t in turns]
            if self.kind == "ring":
                hole = RING_HOLE * self.r
                points += [(self.cx + hole * math.cos(t), self.cy + hole * math.sin(t)) for t in reversed(turns)]
        else:
            points = shape_corners(self.kind, self.cx, self.cy, self.r, self.angle)
        return [round(v, 2) for point in points for v in point]

    def box(self) -> tuple:
        """(x_min, y_min, x_max, y_max) of the outline."""
        outline = self.outline()
        xs, ys = outline[0::2], outline[1::2]
        return min(xs), min(ys), max(xs), max(ys)


@dataclass
class Scene:
    image: Image.Image
    shapes: list
    background: str  # one of TEXTURES


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _place(count: int, size: int, rng: random.Random) -> list:
    """(cx, cy, r) for `count` shapes inside the image whose circles keep GAP apart."""
    for _ in range(1000):
        placed = []
        for _ in range(count):
            r = size * rng.uniform(*RADIUS_RANGE)
            cx, cy = rng.uniform(r + 1, size - r - 1), rng.uniform(r + 1, size - r - 1)
            if all(math.hypot(cx - x, cy - y) >= r + q + GAP * size for x, y, q in placed):
                placed.append((cx, cy, r))
        if len(placed) == count:
            return placed
    raise RuntimeError(f"could not place {count} shapes apart in {size} px")  # not reached for size >= MIN_SIZE


def draw_scene(size: int, rng: random.Random, max_shapes: int = MAX_SHAPES) -> Scene:
    """One scene: 1 to `max_shapes` shapes, no two of the same kind and colour, on a textured background."""
    count = rng.randint(1, max_shapes)
    kinds_and_colours = rng.sample([(kind, colour) for kind in SHAPES for colour in COLOURS], count)
    texture = rng.choice(TEXTURES)
    canvas = add_grain(texture_fill(texture, size, background_colour(rng), rng), rng)
    shapes = []
    for (kind, colour), (cx, cy, r) in zip(kinds_and_colours, _place(count, size, rng)):
        angle = 0.0 if kind in ROUND_SHAPES else rng.uniform(0, 2 * math.pi)
        # Drawn at DRAW_SCALE times the size for smooth edges, where PIL's pixel k is the point k * DRAW_SCALE
        # of pycocotools' polygons. PIL also fills the pixels the outline crosses: a radius smaller by one
        # of them makes the drawn shape as large as its polygon (measured over random shapes).
        outline = Image.new("L", (size * DRAW_SCALE, size * DRAW_SCALE), 0)
        draw_shape(ImageDraw.Draw(outline), kind, cx * DRAW_SCALE, cy * DRAW_SCALE, r * DRAW_SCALE - 1, angle)
        alpha = coverage(outline, size)
        hue = (COLOURS[colour] + rng.uniform(-HUE_JITTER, HUE_JITTER)) / 360 % 1.0
        rgb = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.75, 1.0), rng.uniform(0.8, 1.0))) * 255
        canvas = alpha[..., None] * rgb + (1 - alpha[..., None]) * canvas
        shapes.append(SceneShape(kind, colour, cx, cy, r, angle, alpha >= 0.5))
    image = Image.fromarray(canvas.astype(np.uint8))
    return Scene(image, shapes, texture)


def _left_to_right(shapes: list) -> bool:
    """Each shape's box lies wholly left of the next one's."""
    return all(a.box()[2] < b.box()[0] for a, b in zip(shapes, shapes[1:]))


def _top_to_bottom(shapes: list) -> bool:
    return all(a.box()[3] < b.box()[1] for a, b in zip(shapes, shapes[1:]))


def caption_candidates(scene: Scene) -> tuple:
    """(plain, spatial): every phrasing of the scene this set uses, each naming every shape and its colour;
    the spatial ones say where the shapes are, true of their boxes."""
    shapes = scene.shapes
    names = [_article(shape.name) for shape in shapes]
    if len(shapes) == 1:
        return [names[0], f"one {shapes[0].name}", f"there is {names[0]}", f"a picture of {names[0]}",
                f"{names[0]} on a {BACKGROUND_WORDS[scene.background]} background"], []
    listings = [_listing(order) for order in permutations(names)]
    plain = listings + [f"a picture of {listings[0]}"]
    spatial = []
    by_x = sorted(shapes, key=lambda s: s.cx)
    by_y = sorted(shapes, key=lambda s: s.cy)
    if len(shapes) == 2:
        (left, right), (top, bottom) = by_x, by_y
        if _left_to_right(by_x):
            spatial += [f"{_article(left.name)} left of {_article(right.name)}",
                        f"{_article(right.name)} right of {_article(left.name)}"]
        if _top_to_bottom(by_y):
            spatial += [f"{_article(top.name)} above {_article(bottom.name)}",
                        f"{_article(bottom.name)} below {_article(top.name)}"]
    else:
        if _left_to_right(by_x):
            spatial.append(_listing([_article(s.name) for s in by_x]) + " from left to right")
        if _top_to_bottom(by_y):
            spatial.append(_listing([_article(s.name) for s in by_y]) + " from top to bottom")
    return plain, spatial


def _listing(phrases) -> str:
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def scene_captions(scene: Scene, rng: random.Random) -> list:
    """CAPTIONS_PER_IMAGE phrasings of the scene (fewer where it has fewer): at most two spatial ones,
    so that listings naming the shapes in other orders remain."""
    plain, spatial = caption_candidates(scene)
    rng.shuffle(plain)
    rng.shuffle(spatial)
    return (spatial[:2] + plain)[:CAPTIONS_PER_IMAGE]


def scene_annotations(scene: Scene, image_id: int, first_annotation_id: int) -> list:
    """COCO instance annotations of the scene's shapes: polygon, box [x, y, w, h], area, category."""
    annotations = []
    for offset, shape in enumerate(scene.shapes):
        outline = shape.outline()
        x_min, y_min, x_max, y_max = shape.box()
        xs, ys = outline[0::2], outline[1::2]
        area = abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs)))) / 2  # shoelace
        annotations.append({
            "id": first_annotation_id + offset, "image_id": image_id,
            "category_id": SHAPES.index(shape.kind) + 1, "segmentation": [outline],
            "area": round(area, 2), "bbox": [round(x_min, 2), round(y_min, 2), round(x_max - x_min, 2),
                                             round(y_max - y_min, 2)],
            "iscrowd": 0, "colour": shape.colour,
        })
    return annotations


def words_table() -> str:
    """The set's word table, one category a line: `category: word, word` (`#` starts a comment)."""
    lines = ["# The shape words of this synthetic set and the categories they name; singular and plural."]
    return "\n".join(lines + [f"{shape}: {shape}, {PLURALS[shape]}" for shape in SHAPES]) + "\n"


def check_free(out_dir: Path) -> None:
    """Refuse a folder that holds a set already: old and new images of another seed or size would mix."""
    for split in SPLITS:
        folder = out_dir / split
        if folder.is_dir() and any(is_image_file(p) for p in folder.iterdir()):
            raise UserError(f"{folder} already holds images; remove it or choose another folder")
        for name in (f"captions_{split}.json", f"instances_{split}.json"):
            if (out_dir / "annotations" / name).exists():
                raise UserError(f"{out_dir / 'annotations' / name} already exists; remove it or choose another folder")


def generate_scenes(seed: int, n_train: int, n_val: int, size: int, max_shapes: int = MAX_SHAPES):
    """Yield (split, image id, scene, captions) for the whole set, in order: the same seed, the same scenes.
    Image ids run 1..n_train for train and on from there for val."""
    rng = random.Random(seed)
    for image_id in range(1, n_train + n_val + 1):
        scene = draw_scene(size, rng, max_shapes)
        yield SPLITS[image_id > n_train], image_id, scene, scene_captions(scene, rng)


def make_captioned_set(out_dir, seed: int = 0, n_train: int = DEFAULT_TRAIN, n_val: int = DEFAULT_VAL,
                       size: int = DEFAULT_SIZE, max_shapes: int = MAX_SHAPES) -> Path:
    """Write the set to `out_dir` (layout in the module docstring); a folder that holds one is refused."""
    check_size(size, MIN_SIZE)
    if not 1 <= max_shapes <= MAX_SHAPES:
        raise UserError(f"the shapes per scene must be 1 to {MAX_SHAPES}, not {max_shapes}")
    if n_train < 1 or n_val < 1:
        raise UserError(f"each split needs at least one scene, not {n_train} training and {n_val} validation")
    out_dir = Path(out_dir)
    check_free(out_dir)
    images = {split: [] for split in SPLITS}
    captions = {split: [] for split in SPLITS}
    instances = {split: [] for split in SPLITS}
    for split, image_id, scene, scene_caption_list in generate_scenes(seed, n_train, n_val, size, max_shapes):
        file_name = f"{image_id:012d}.png"
        save_png(scene.image, make_folder(out_dir / split) / file_name)
        images[split].append({"id": image_id, "file_name": file_name, "width": size, "height": size})
        first_caption = sum(len(c) for c in captions.values()) + 1
        captions[split] += [{"id": first_caption + k, "image_id": image_id, "caption": caption}
                            for k, caption in enumerate(scene_caption_list)]
        instances[split] += scene_annotations(scene, image_id, sum(len(a) for a in instances.values()) + 1)
    annotations = make_folder(out_dir / "annotations")
    for split in SPLITS:
        write_text_atomic(annotations / f"captions_{split}.json",
                          json.dumps({"images": images[split], "annotations": captions[split]}) + "\n")
        write_text_atomic(annotations / f"instances_{split}.json",
                          json.dumps({"images": images[split], "annotations": instances[split],
                                      "categories": list(CATEGORIES)}) + "\n")
    write_text_atomic(annotations / WORDS_FILE, words_table())
    return out_dir
