"""eval_grounding.py on a synthetic COCO-format set drawn here: masks, metrics, report, resume, errors."""
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

import catr
import eval_grounding
from catr.grounding import Grader, is_record
from data.coco_instances import category_mask, load_instances, rle_counts

TINY = ["--random_weights", "--config", "tiny"]
SQUARE = (8, 10, 40, 42)  # x0, y0, x1, y1 of the red square (pixels x0..x1-1, y0..y1-1)
CIRCLE = (60, 30, 14)  # centre x, y and radius of the blue disc


def _disc(width, height):
    yy, xx = np.mgrid[:height, :width]
    return (xx - CIRCLE[0]) ** 2 + (yy - CIRCLE[1]) ** 2 <= CIRCLE[2] ** 2


def make_coco(folder, images=3, width=80, height=56):
    """Images with a square (annotated by polygon) and a disc (annotated by compressed RLE, as a crowd
    region), the instances and captions files, and a word table for them."""
    (folder / "images").mkdir()
    instance_entries, caption_entries, image_entries = [], [], []
    x0, y0, x1, y1 = SQUARE
    for image_id in range(1, images + 1):
        picture = Image.new("RGB", (width, height), (200, 200, 200))
        ImageDraw.Draw(picture).rectangle((x0, y0, x1 - 1, y1 - 1), fill=(220, 20, 20))
        disc = _disc(width, height)
        pixels = np.asarray(picture).copy()
        pixels[disc] = (20, 20, 220)
        Image.fromarray(pixels).save(folder / "images" / f"{image_id:012d}.jpg")
        image_entries.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": width, "height": height})
        rle = mask_utils.encode(np.asfortranarray(disc.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        instance_entries += [
            {"id": 2 * image_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "area": 1.0,
             "bbox": [x0, y0, x1 - x0, y1 - y0],
             "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]]},
            {"id": 2 * image_id + 1, "image_id": image_id, "category_id": 2, "iscrowd": 1, "area": 1.0,
             "bbox": [0, 0, 1, 1], "segmentation": rle},
        ]
        caption_entries += [{"id": 10 * image_id, "image_id": image_id, "caption": "A red square and a circle."},
                            {"id": 10 * image_id + 1, "image_id": image_id, "caption": "Two triangles."}]
    categories = [{"id": 1, "name": "square"}, {"id": 2, "name": "circle"}, {"id": 3, "name": "triangle"}]
    (folder / "instances.json").write_text(json.dumps(
        {"images": image_entries, "annotations": instance_entries, "categories": categories}))
    (folder / "captions.json").write_text(json.dumps({"images": image_entries, "annotations": caption_entries}))
    (folder / "words.txt").write_text("# shapes\nsquare: square, squares\ncircle: circle, circles, disc\n"
                                      "triangle: triangle, triangles\n")
    return folder


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    return make_coco(tmp_path_factory.mktemp("coco"))


def _args(coco, *extra):
    return ["--img_dir", coco / "images", "--instances", coco / "instances.json", "--words", coco / "words.txt",
            *TINY, "--device", "cpu", "--no_progress", "--sanity_images", 0, "--resamples", 200, *extra]


def test_polygon_and_rle_masks_line_up_with_the_drawn_shapes(coco):
    instances = load_instances(coco / "instances.json")
    square = category_mask(instances, 1, "square")
    x0, y0, x1, y1 = SQUARE
    drawn = np.zeros_like(square)
    drawn[y0:y1, x0:x1] = True
    # pycocotools rasterises a polygon's edges at pixel centres: the two agree but for the border rows.
    assert (square & ~drawn).sum() == 0 or (square ^ drawn).sum() <= 2 * (x1 - x0 + y1 - y0) + 4
    assert square[y0 + 1: y1 - 1, x0 + 1: x1 - 1].all() and not square[:y0 - 1].any() and not square[:, x1 + 1:].any()
    assert (category_mask(instances, 1, "circle") == _disc(80, 56)).all()
    assert not category_mask(instances, 1, "triangle").any()
    assert instances.present[1] == {"square", "circle"}


def test_compressed_run_lengths_are_read_as_pycocotools_writes_them():
    rng = np.random.default_rng(0)
    for height, width in ((56, 80), (300, 7), (1, 1)):
        mask = np.asfortranarray(rng.random((height, width)) < rng.random())
        mask[: height // 2] = False  # a long run: numbers of several characters
        flat = mask.flatten(order="F")
        changes = np.flatnonzero(np.diff(flat)) + 1
        runs = np.diff(np.concatenate(([0], changes, [flat.size]))).tolist()
        expected = runs if not flat[0] else [0, *runs]
        assert rle_counts(mask_utils.encode(mask.astype(np.uint8))["counts"].decode("ascii")) == expected


def test_reference_report_json_and_figure(coco, tmp_path, run_cli):
    out = tmp_path / "g.json"
    argv = _args(coco, "--captions", coco / "captions.json", "--limit", 1, "--layers", -1, "--out_json", out,
                 "--out_png", tmp_path / "g.png")
    code, stdout, stderr = run_cli(eval_grounding.main, argv)
    assert code == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    assert json.loads(out.read_text()) == result
    assert result["images"] == 1 and result["words"] == 2 and result["categories"] == 2  # triangles absent
    methods = result["methods"]
    assert list(methods) == ["attention@2", "relevancy", "attnlrp", "legrad", "uniform", "random"]
    # The uniform map's correctness is the objects' mean area share (bilinear upsampling of a constant).
    shares = [(SQUARE[2] - SQUARE[0]) * (SQUARE[3] - SQUARE[1]) / (80 * 56), _disc(80, 56).mean()]
    assert methods["uniform"]["correctness"] == pytest.approx(100 * np.mean(shares), abs=0.01)
    assert methods["uniform"]["deletion_most_auc"] is None
    for method in ("attention@2", "relevancy", "attnlrp", "legrad", "random"):
        curve = methods[method]["deletion_most_curve"]
        assert len(curve) == 10 and curve[0] == 1
    assert "| relevancy |" in stdout and "hallucination" not in result
    with Image.open(tmp_path / "g.png") as figure:
        assert figure.width > 500
    _, record = (tmp_path / "g.images.jsonl").read_text().splitlines()
    assert is_record(json.loads(record), list(methods))  # what a rerun takes for its own


@pytest.mark.slow  # two captioners, every method, and the sanity check's 7 stages: 40 s or more on 2 cores
def test_several_captioners_on_the_same_words_with_intervals_and_the_sanity_check(coco, tmp_path, run_cli):
    weights = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        weights.append(tmp_path / f"w{seed}.pt")
        torch.save({"model": catr.build_model("tiny").state_dict()}, weights[-1])
    argv = ["--img_dir", coco / "images", "--instances", coco / "instances.json", "--words", coco / "words.txt",
            "--captions", coco / "captions.json", "--config", "tiny", "--weights", *weights, "--device", "cpu",
            "--no_progress", "--limit", 2, "--no_deletion", "--sanity_images", 1, "--resamples", 200,
            "--out_json", tmp_path / "g.json"]
    code, stdout, stderr = run_cli(eval_grounding.main, argv)
    assert code == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    assert [c["weights"] for c in result["checkpoints"]] == [str(w) for w in weights]
    assert (tmp_path / "g.images.0.jsonl").exists() and (tmp_path / "g.images.1.jsonl").exists()
    relevancy = result["methods"]["relevancy"]
    for measure in ("correctness", "pointing_game", "pointing_game_scaled"):
        low, high = relevancy[f"{measure}_ci95"]
        assert low <= relevancy[measure] <= high
        assert relevancy["against_uniform"][measure]["verdict"] in ("beats", "loses", "no clear difference")
    assert result["layers"]["best"].startswith("attention@") and result["layers"]["next"].startswith("attention@")
    assert "attention@1 - attention@2" in result["differences"]
    sanity = result["sanity"]
    assert "uniform" not in sanity and sanity["random"]["correlation"] == [1.0] * len(sanity["random"]["stages"])
    assert sanity["relevancy"]["stages"][:2] == ["head", "decoder 2"] and sanity["relevancy"]["verdict_stage"] == "decoder 1"
    assert set(result["rank_correlation"]["relevancy"]["correctness"]) == {"spearman", "spearman_ci95"}
    assert 0 <= result["word_probability"] <= 100 and "best layer by correctness" in stdout
    generated = [a for a in argv if a not in ("--captions", coco / "captions.json")] + ["--generate"]
    code, _, stderr = run_cli(eval_grounding.main, generated)
    assert code == 2 and "give --captions" in stderr


def test_a_rerun_continues_the_cache(coco, tmp_path, run_cli, monkeypatch):
    out = tmp_path / "g.json"
    argv = _args(coco, "--captions", coco / "captions.json", "--no_deletion", "--out_json", out)
    code, _, stderr = run_cli(eval_grounding.main, argv + ["--limit", 2])
    assert code == 0, stderr
    cache = tmp_path / "g.images.jsonl"
    assert len(cache.read_text().splitlines()) == 3  # settings and two images
    # A crash cut the last line short: the rerun redoes that image and grades the third one.
    cache.write_text(cache.read_text()[:-20])
    graded = []
    original = Grader.grade
    monkeypatch.setattr(Grader, "grade",
                        lambda self, image_id, *a: graded.append(image_id) or original(self, image_id, *a))
    code, stdout, stderr = run_cli(eval_grounding.main, argv)
    assert code == 0, stderr
    assert graded == [2, 3] and "cut short" in stderr
    assert json.loads(stdout.strip().splitlines()[-1])["images"] == 3
    assert len(cache.read_text().splitlines()) == 4
    # Other settings must not mix with these results.
    code, _, stderr = run_cli(eval_grounding.main, argv + ["--seed", 1])
    assert code == 2 and "was begun with seed 0" in stderr


def test_generated_mode_counts_hallucinations(coco, tmp_path, run_cli):
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": 1, "caption": "a square beside a triangle"},
                                   {"image_id": 2, "caption": "a circle"}]))
    code, stdout, stderr = run_cli(eval_grounding.main, _args(coco, "--results", results, "--no_deletion",
                                                              "--layers", -1))
    assert code == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["hallucination"] == {"chair_i": pytest.approx(100 / 3, abs=0.01), "chair_s": 50.0,
                                       "object_mentions": 3, "captions": 2}
    assert list(result["methods"]) == ["attention@2", "relevancy", "attnlrp", "legrad", "uniform", "random"]
    assert result["words"] == 2 and result["methods"]["relevancy"]["deletion_most_auc"] is None


def test_generate_mode_runs(coco, tmp_path, run_cli):
    code, stdout, stderr = run_cli(eval_grounding.main, _args(coco, "--generate", "--max_steps", 3, "--beam", 2,
                                                              "--limit", 1, "--no_deletion"))
    # Random weights rarely say "square": either graded or the one-line "nothing to grade".
    assert code in (0, 2), stderr
    assert code == 0 or "nothing to grade" in stderr


@pytest.mark.parametrize("change, message", [
    (lambda c: (c / "bad.json").write_text("{"), "not valid JSON"),
    (lambda c: (c / "bad.json").write_text('{"images": []}'), "instances format"),
])
def test_malformed_instances(coco, tmp_path, run_cli, change, message):
    change(tmp_path)
    argv = _args(coco, "--captions", coco / "captions.json")
    argv[argv.index("--instances") + 1] = tmp_path / "bad.json"
    code, _, stderr = run_cli(eval_grounding.main, argv)
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1


def test_bad_input_is_one_line_and_exit_2(coco, tmp_path, run_cli):
    (tmp_path / "empty").mkdir()
    (tmp_path / "table.txt").write_text("square square\n")
    (tmp_path / "nothing.json").write_text(json.dumps(
        {"images": [{"id": 1, "file_name": "000000000001.jpg"}],
         "annotations": [{"image_id": 1, "caption": "grey background"}]}))
    cases = [
        (_args(coco, "--captions", tmp_path / "missing.json"), "not found"),
        (_args(coco, "--captions", coco / "words.txt"), "not valid JSON"),
        (_args(coco, "--captions", coco / "captions.json")[:1] + [tmp_path / "empty"]
         + _args(coco, "--captions", coco / "captions.json")[2:], "holds none"),
        (_args(coco, "--captions", tmp_path / "nothing.json"), "no caption holds a word"),
        (_args(coco, "--captions", coco / "captions.json", "--layers", 3), "out of range"),
        (_args(coco, "--generate", "--beam", 0), "--beam"),
        (_args(coco, "--captions", coco / "captions.json", "--words", tmp_path / "table.txt"), "expected 'category:"),
        (_args(coco, "--captions", coco / "captions.json", "--out_png", tmp_path / "g.txt"), "--out_png"),
    ]
    for argv, message in cases:
        code, _, stderr = run_cli(eval_grounding.main, argv)
        assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, (argv, stderr)


def test_outputs_checked_before_any_work_and_inputs_never_overwritten(coco, tmp_path, run_cli, monkeypatch):
    """eval_grounding: an output onto an input, into a folder, under a file or onto
    another output, a seed out of range and a beam wider than the vocabulary: one line before any grading."""
    monkeypatch.setattr(eval_grounding, "load_instances", None)  # every check below comes before the data
    (tmp_path / "file").write_text("")
    captions = ["--captions", coco / "captions.json"]
    before = (coco / "captions.json").read_bytes()
    cases = [
        (["--out_json", coco / "captions.json"], "would overwrite the input"),
        (["--cache", coco / "instances.json"], "would overwrite the input"),
        (["--out_png", coco / "images" / "000000000001.jpg"], "would overwrite the input"),
        (["--out_json", tmp_path], "is a folder"),
        (["--cache", tmp_path / "file" / "c.jsonl"], "a file stands where its folder should be"),
        (["--out_json", tmp_path / "r.json", "--cache", tmp_path / "r.json"], "name the same file"),
        (["--seed", 2**64], "--seed must be in 0..4294967295"),
    ]
    for extra, message in cases:
        code, _, stderr = run_cli(eval_grounding.main, _args(coco, *captions, *extra))
        assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, (extra, stderr)
    assert (coco / "captions.json").read_bytes() == before
    monkeypatch.undo()
    code, _, stderr = run_cli(eval_grounding.main, _args(coco, "--generate", "--beam", 40000, "--limit", 1))
    assert code == 2 and stderr.strip().splitlines()[-1].startswith("error: --beam 40000 is wider than the vocabulary")
