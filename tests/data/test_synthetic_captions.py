"""The synthetic captioned set: masks on the drawn shapes, captions naming exactly them, seeds, refusals."""
import colorsys
import json
import re
from collections import Counter

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from catr.tokenizer import load_tokenizer
from data.io import UserError
from data.synthetic import SHAPES
from data.synthetic_captions import COLOURS, generate_scenes, make_captioned_set
import make_synthetic_data
from tests.support import kill_on_image_save

SEED, N_TRAIN, N_VAL, SIZE = 3, 14, 6, 96
PAIR = re.compile(rf"\b({'|'.join(COLOURS)}) ({'|'.join(SHAPES)})\b")
NAME = rf"(?:{'|'.join(COLOURS)}) (?:{'|'.join(SHAPES)})"
SHAPE_WORD = re.compile(rf"\b({'|'.join(SHAPES)})s?\b")
COLOUR_WORD = re.compile(rf"\b({'|'.join(COLOURS)})\b")


@pytest.fixture(scope="module")
def captioned(tmp_path_factory):
    return make_captioned_set(tmp_path_factory.mktemp("captioned") / "set", SEED, N_TRAIN, N_VAL, SIZE)


def coco(root, kind, split):
    return COCO(str(root / "annotations" / f"{kind}_{split}.json"))


def nearest_colour(rgb: np.ndarray) -> list:
    """The named colour nearest in hue to each (N, 3) pixel, or None where it is greyish or dark."""
    names = []
    for r, g, b in rgb / 255:
        hue, saturation, value = colorsys.rgb_to_hsv(r, g, b)
        names.append(None if saturation < 0.5 or value < 0.5 else
                     min(COLOURS, key=lambda c: min(abs(hue * 360 - COLOURS[c]), 360 - abs(hue * 360 - COLOURS[c]))))
    return names


def grown(mask: np.ndarray) -> np.ndarray:
    """The mask and its 4-neighbours."""
    padded = np.pad(mask, 1)
    return mask | padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]


def boxes(instances, image_id) -> dict:
    """'colour kind' -> (x_min, y_min, x_max, y_max) of the image's shapes."""
    found = {}
    for ann in instances.loadAnns(instances.getAnnIds(imgIds=image_id)):
        x, y, w, h = ann["bbox"]
        found[f"{ann['colour']} {instances.cats[ann['category_id']]['name']}"] = (x, y, x + w, y + h)
    return found


@pytest.mark.parametrize("split", ["train", "val"])
def test_masks_line_up_with_the_drawn_shapes(captioned, split, capsys):
    instances = coco(captioned, "instances", split)
    assert [c["name"] for c in instances.loadCats(instances.getCatIds())] == list(SHAPES)
    scenes = [(i, s) for sp, i, s, _ in generate_scenes(SEED, N_TRAIN, N_VAL, SIZE) if sp == split]
    assert sorted(instances.getImgIds()) == [i for i, _ in scenes]
    for image_id, scene in scenes:
        info = instances.loadImgs(image_id)[0]
        pixels = np.asarray(Image.open(captioned / split / info["file_name"]).convert("RGB"))
        anns = instances.loadAnns(instances.getAnnIds(imgIds=image_id))
        assert len(anns) == len(scene.shapes)
        anywhere = np.zeros((SIZE, SIZE), dtype=bool)
        for ann, shape in zip(anns, scene.shapes):
            mask = instances.annToMask(ann).astype(bool)
            anywhere |= mask
            assert (instances.cats[ann["category_id"]]["name"], ann["colour"]) == (shape.kind, shape.colour)
            assert (mask & shape.mask).sum() / (mask | shape.mask).sum() > 0.85
            assert ann["area"] == pytest.approx(mask.sum(), rel=0.1)
            ys, xs = np.nonzero(mask)
            x, y, w, h = ann["bbox"]
            assert x - 1 <= xs.min() and xs.max() <= x + w and y - 1 <= ys.min() and ys.max() <= y + h
            inside = ~grown(~mask)  # edge pixels blend with the background
            colours = Counter(nearest_colour(pixels[inside]))
            assert colours[ann["colour"]] >= 0.95 * inside.sum() > 0
        near = grown(anywhere)
        background = Counter(nearest_colour(pixels[~near]))
        assert background[None] >= 0.99 * (~near).sum()
    capsys.readouterr()  # pycocotools prints as it loads


@pytest.mark.parametrize("split", ["train", "val"])
def test_captions_name_exactly_the_shapes_drawn_and_tell_the_truth_about_places(captioned, split, capsys):
    captions, instances = coco(captioned, "captions", split), coco(captioned, "instances", split)
    tokenizer = load_tokenizer()
    spatial = 0
    for image_id in instances.getImgIds():
        where = boxes(instances, image_id)
        texts = [ann["caption"] for ann in captions.loadAnns(captions.getAnnIds(imgIds=image_id))]
        assert len(texts) >= 3 and len(set(texts)) == len(texts)
        for text in texts:
            named = [f"{colour} {kind}" for colour, kind in PAIR.findall(text)]
            assert sorted(named) == sorted(where), text
            assert len(SHAPE_WORD.findall(text)) == len(COLOUR_WORD.findall(text)) == len(named), text
            for a, relation, b in re.findall(rf"\ban? ({NAME}) (left of|right of|above|below) an? ({NAME})", text):
                spatial += 1
                first, second = where[a], where[b]
                if relation in ("right of", "below"):
                    first, second = second, first
                axis = 0 if relation in ("left of", "right of") else 1
                assert first[axis + 2] < second[axis], text
            for words, axis in (("from left to right", 0), ("from top to bottom", 1)):
                if text.endswith(words):
                    spatial += 1
                    ordered = [where[name] for name in named]
                    assert all(p[axis + 2] < q[axis] for p, q in zip(ordered, ordered[1:])), text
            assert tokenizer.decode(tokenizer.encode(text)) == text.capitalize()
    assert spatial > 0
    capsys.readouterr()


def test_word_table_maps_shape_words_and_plurals_to_categories(captioned):
    """The table format of scripts/eval_grounding.py --words: `category: word, word`, `#` comments."""
    table = {}
    for line in (captioned / "annotations" / "object_words.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            category, colon, words = line.partition(":")
            assert colon and category.strip()
            table.update({word.strip(): category.strip() for word in words.split(",")})
    assert {table[shape] for shape in SHAPES} == set(SHAPES) == set(table.values())
    assert (table["circles"], table["crosses"], table["rings"]) == ("circle", "cross", "ring")


def test_the_same_seed_gives_the_same_files_and_another_seed_others(tmp_path):
    def files(folder):
        return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    a, b, c = (files(make_captioned_set(tmp_path / name, seed, 3, 2, 48)) for name, seed in
               (("a", 5), ("b", 5), ("c", 6)))
    assert a == b and len(a) == 3 + 2 + 5
    assert a.keys() == c.keys() and a != c


def test_a_folder_in_use_is_refused_and_left_as_it_was(tmp_path):
    out = make_captioned_set(tmp_path / "set", 0, 2, 1, 48)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(UserError, match="already holds images"):
        make_captioned_set(out, 1, 2, 1, 64)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    (tmp_path / "only" / "annotations").mkdir(parents=True)
    (tmp_path / "only" / "annotations" / "captions_val.json").write_text("{}")
    with pytest.raises(UserError, match="captions_val.json already exists"):
        make_captioned_set(tmp_path / "only", 0, 2, 1, 48)


def test_a_cut_run_leaves_no_half_image_and_no_annotations(tmp_path, monkeypatch):
    kill_on_image_save(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        make_captioned_set(tmp_path / "cut", 0, 4, 1, 48)
    assert sorted(p.name for p in (tmp_path / "cut").rglob("*") if p.is_file()) == \
        ["000000000001.png", "000000000002.png"]


def test_the_script_writes_a_set_pycocotools_reads(tmp_path, run_cli):
    code, out, err = run_cli(make_synthetic_data.main, ["--captions", "--out", tmp_path / "set", "--train_scenes", 2,
                                                  "--val_scenes", 1, "--size", 48])
    assert (code, err) == (0, "") and "wrote 2 training and 1 validation scenes" in out
    data = json.loads((tmp_path / "set" / "annotations" / "captions_val.json").read_text())
    assert data["images"] == [{"id": 3, "file_name": "000000000003.png", "width": 48, "height": 48}]
    assert Image.open(tmp_path / "set" / "val" / "000000000003.png").size == (48, 48)


def test_max_shapes_bounds_the_shapes_of_every_scene():
    counts = {limit: Counter(len(scene.shapes) for _, _, scene, _ in generate_scenes(0, 60, 0, 48, limit))
              for limit in (1, 2, 3)}
    assert set(counts[1]) == {1} and set(counts[2]) == {1, 2} and set(counts[3]) == {1, 2, 3}
    default = [(scene.background, [(s.kind, s.colour) for s in scene.shapes]) for _, _, scene, _ in generate_scenes(0, 5, 0, 48)]
    same = [(scene.background, [(s.kind, s.colour) for s in scene.shapes]) for _, _, scene, _ in generate_scenes(0, 5, 0, 48, 3)]
    assert default == same  # the default is three: the sets made before the flag stay the same


@pytest.mark.parametrize("flags, message", [
    (["--captions", "--size", "40"], "in 48..10000 pixels"),
    (["--captions", "--size", "100000"], "in 48..10000 pixels"),
    (["--captions", "--train_scenes", "0"], "at least one scene"),
    (["--captions", "--val_scenes", "-1"], "at least one scene"),
    (["--captions", "--masks"], "--captions does not take --masks"),
    (["--captions", "--train_per_class", "3"], "--captions does not take --train_per_class"),
    (["--val_scenes", "5"], "give --captions too"),
    (["--max_shapes", "1"], "give --captions too"),
    (["--captions", "--max_shapes", "0"], "must be 1 to 3, not 0"),
    (["--captions", "--max_shapes", "4"], "must be 1 to 3, not 4"),
])
def test_bad_flags_are_one_line_and_exit_2(tmp_path, run_cli, flags, message):
    code, _, err = run_cli(make_synthetic_data.main, ["--out", tmp_path / "set", *flags])
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "set").exists()
