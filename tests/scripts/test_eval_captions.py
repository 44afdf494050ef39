"""scripts/eval_captions.py and catr.scores: COCO-format files, pycocoevalcap's values, resuming, bad input."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

import catr.cli
import catr.pipeline
from catr.scores import METRICS, most_frequent_caption, score_captions, tokenize
from data.io import UserError, sidecar_name

import eval_captions
from tests.support import lock_held_elsewhere

TINY = ["--random_weights", "--config", "tiny", "--max_steps", "3"]
REFERENCES = {
    1: ["A dog runs on the grass.", "a brown dog running in a field"],
    2: ["Two cats sleep on a red sofa", "two cats are sleeping on a couch."],
    3: ["A man rides a bike down the street", "a person riding a bicycle"],
    4: ["A plate of food with broccoli", "some food on a white plate"],
}


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    """Annotations for four images, three of them in the image folder (1 and 3 the same size)."""
    root = tmp_path_factory.mktemp("coco")
    images = root / "val2017"
    images.mkdir()
    rng = np.random.default_rng(0)
    sizes = {1: (64, 48), 2: (40, 56), 3: (64, 48)}
    for image_id, (width, height) in sizes.items():
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"{image_id:012d}.jpg")
    annotations = {
        "images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": sizes.get(i, (9, 9))[0],
                    "height": sizes.get(i, (9, 9))[1]} for i in REFERENCES],
        "annotations": [{"image_id": i, "id": 10 * i + k, "caption": c}
                        for i, captions in REFERENCES.items() for k, c in enumerate(captions)],
    }
    (root / "captions.json").write_text(json.dumps(annotations))
    return root


def write_results(path, captions):
    path.write_text(json.dumps([{"image_id": i, "caption": c} for i, c in captions.items()]))
    return path


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("caption, tokens", [
    # The right-hand sides are what pycocoevalcap's Java PTB tokenizer and punctuation filter gave.
    ("A Dog's T-shirt, on 3.5 bikes!", "a dog 's t-shirt on 3.5 bikes"),
    ('Two people don\'t "ride" (a) bike...', "two people do n't ride -lrb- a -rrb- bike"),
    ("A clock that reads 10:30 a.m. on a building.", "a clock that reads 10:30 a.m. on a building"),
    ("There are 1,000 birds on the U.S. flag.", "there are 1,000 birds on the u.s. flag"),
    ("They're eating a hot-dog & fries for $5.", "they 're eating a hot-dog & fries for $ 5"),
    ('A sign that says "stop" at 50% off.', "a sign that says stop at 50 % off"),
    ("A 'vintage' car -- at 5th Ave. and Main St.", "a vintage car at 5th ave. and main st."),
    ("A pizza w/ pepperoni; the man's shirt is red/white/blue", "a pizza w / pepperoni the man 's shirt is red/white/blue"),
    ("", ""),
])
def test_tokenize_as_coco_evaluation_does(caption, tokens):
    assert tokenize(caption) == tokens


def test_identical_captions_score_one(coco, tmp_path, run_cli):
    # Case and punctuation differ from the references; the tokenisation removes the difference.
    results = write_results(tmp_path / "r.json", {1: "a dog runs on the grass", 2: "Two cats sleep on a red sofa!"})
    code, out, err = run_cli(eval_captions.main, ["--annotations", coco / "captions.json", "--results", results])
    assert code == 0, err
    scores = last_json(out)
    assert scores["images"] == 2
    assert scores["BLEU-4"] == pytest.approx(1.0) and scores["BLEU-1"] == pytest.approx(1.0)
    assert scores["ROUGE-L"] == pytest.approx(1.0)
    assert "2 of 4 annotated images scored" in out


def test_scores_are_pycocoevalcaps_on_the_tokenised_captions():
    captions = {1: "A dog is running on grass.", 2: "Cats on a sofa", 3: "A man riding a bike."}
    scores = score_captions(REFERENCES, captions)
    # The same captions tokenised by hand, as the Java PTB tokenizer and COCO's punctuation filter give them.
    ground_truth = {1: ["a dog runs on the grass", "a brown dog running in a field"],
                    2: ["two cats sleep on a red sofa", "two cats are sleeping on a couch"],
                    3: ["a man rides a bike down the street", "a person riding a bicycle"]}
    candidates = {1: ["a dog is running on grass"], 2: ["cats on a sofa"], 3: ["a man riding a bike"]}
    bleu, _ = Bleu(4).compute_score(ground_truth, candidates, verbose=0)
    assert [scores[f"BLEU-{n}"] for n in range(1, 5)] == pytest.approx(bleu, abs=1e-12)
    assert scores["ROUGE-L"] == pytest.approx(Rouge().compute_score(ground_truth, candidates)[0], abs=1e-12)
    assert scores["CIDEr"] == pytest.approx(Cider().compute_score(ground_truth, candidates)[0], abs=1e-12)
    assert 0 < scores["BLEU-4"] < scores["BLEU-1"] < 1 and scores["CIDEr"] > 0


def test_captioning_writes_results_then_scores_them(coco, tmp_path, run_cli):
    out = tmp_path / "results" / "tiny.json"
    code, stdout, err = run_cli(eval_captions.main, ["--annotations", coco / "captions.json", "--img_dir",
                                                     coco / "val2017", "--out_results", out, "--beam", "2", *TINY])
    assert code == 0, err
    assert "holds 3 of the 4 annotated images" in err
    results = json.loads(out.read_text())
    assert [entry["image_id"] for entry in results] == [1, 2, 3]
    assert all(isinstance(entry["caption"], str) for entry in results)
    assert last_json(stdout)["images"] == 3


def test_resuming_skips_the_images_already_done(coco, tmp_path, run_cli, monkeypatch):
    out = tmp_path / "r.json"
    captioned = []

    def counting_generate(model, images, **kwargs):
        captioned.extend(images)
        return catr.generate(model, images, **kwargs)
    monkeypatch.setattr(catr.pipeline, "generate", counting_generate)
    argv = ["--annotations", coco / "captions.json", "--img_dir", coco / "val2017", "--out_results", out, *TINY]
    assert run_cli(eval_captions.main, argv + ["--limit", "1"])[0] == 0
    out.write_text(json.dumps([{"image_id": 1, "caption": "a caption kept"}]))  # the settings still hold
    code, stdout, err = run_cli(eval_captions.main, argv + ["--limit", "2"])
    assert code == 0, err
    assert "2 images: 1 already in" in stdout and len(captioned) == 2
    results = {entry["image_id"]: entry["caption"] for entry in json.loads(out.read_text())}
    assert sorted(results) == [1, 2] and results[1] == "a caption kept"
    code, stdout, err = run_cli(eval_captions.main, argv)
    assert code == 0, err
    assert "3 images: 2 already in" in stdout and len(captioned) == 3
    code, stdout, err = run_cli(eval_captions.main, argv)
    assert "3 images: 3 already in" in stdout and len(captioned) == 3  # nothing left: the model is not even loaded


def test_an_unreadable_image_stops_the_run_keeping_the_others_unless_skipped(coco, tmp_path, run_cli):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("000000000001.jpg", "000000000002.jpg"):
        (images / name).write_bytes((coco / "val2017" / name).read_bytes())
    (images / "000000000003.jpg").write_text("not a JPEG")
    out = tmp_path / "r.json"
    argv = ["--annotations", coco / "captions.json", "--img_dir", images, "--out_results", out, *TINY,
            "--batch_size", "2"]
    code, _, err = run_cli(eval_captions.main, argv)
    assert code == 2
    assert "000000000003.jpg" in err and err.strip().endswith("(--skip_bad_images leaves such images out)")
    assert [entry["image_id"] for entry in json.loads(out.read_text())] == [1, 2]
    code, stdout, err = run_cli(eval_captions.main, argv + ["--skip_bad_images"])
    assert code == 0 and "1 images could not be read" in err and last_json(stdout)["images"] == 2, err


BAD_INPUT = [
    (["--results", "{tmp}/r.json"], "annotations file not found", {"annotations": None}),
    (["--results", "{tmp}/r.json"], "is not valid JSON", {"annotations": "{not json"}),
    (["--results", "{tmp}/r.json"], "is not in COCO's caption format", {"annotations": "[]"}),
    (["--results", "{tmp}/r.json"], "entry 0 has no str 'caption'",
     {"annotations": '{"images": [], "annotations": [{"image_id": 1}]}'}),
    (["--results", "{tmp}/missing.json"], "results file not found", {}),
    (["--results", "{tmp}/r.json"], "is not valid JSON", {"results": "[{"}),
    (["--results", "{tmp}/r.json"], "is not a COCO results file", {"results": '{"image_id": 1}'}),
    (["--results", "{tmp}/r.json"], "entry 1 has no int 'image_id'",
     {"results": '[{"image_id": 1, "caption": "a"}, {"image_id": "2", "caption": "b"}]'}),
    (["--results", "{tmp}/r.json"], "image id 77, which is not among the annotated images of",
     {"results": '[{"image_id": 1, "caption": "a"}, {"image_id": 77, "caption": "b"}]'}),
    (["--results", "{tmp}/r.json"], "image id 1 has more than one caption",
     {"results": '[{"image_id": 1, "caption": "a"}, {"image_id": 1, "caption": "b"}]'}),
    (["--results", "{tmp}/r.json"], "no captions to score", {"results": "[]"}),
    (["--out_results", "{tmp}/o.json", "--img_dir", "{images}", "--beam", "0", *TINY], "--beam must be at least 1", {}),
    (["--out_results", "{tmp}/o.json", "--img_dir", "{images}", "--batch_size", "0", *TINY], "--batch_size", {}),
    (["--out_results", "{tmp}/o.json", "--img_dir", "{images}", "--limit", "0", *TINY], "--limit", {}),
    (["--out_results", "{tmp}/o.json", *TINY], "captioning needs --img_dir", {}),
    (["--out_results", "{tmp}/o.json", "--img_dir", "{tmp}", *TINY], "holds none of the 4 images", {}),
    (["--out_results", "{tmp}/o.json", "--img_dir", "{tmp}/nope", *TINY], "folder not found", {}),
    (["--out_results", "{tmp}/r.json", "--img_dir", "{images}", *TINY], "is not a COCO results file",
     {"results": "{}"}),
]


@pytest.mark.parametrize("argv, message, files", BAD_INPUT)
def test_bad_input_is_one_line_and_exit_2(coco, tmp_path, run_cli, argv, message, files):
    annotations = coco / "captions.json"
    if "annotations" in files:
        annotations = tmp_path / "annotations.json"
        if files["annotations"] is not None:
            annotations.write_text(files["annotations"])
    (tmp_path / "r.json").write_text(files.get("results", '[{"image_id": 1, "caption": "a dog"}]'))
    argv = [arg.format(tmp=tmp_path, images=coco / "val2017") for arg in argv]
    code, _, err = run_cli(eval_captions.main, ["--annotations", annotations, *argv])
    errors = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert code == 2
    assert len(errors) == 1 and errors[0].startswith("error: ") and message in errors[0], err


def make_coco(root, images: dict, references=None, entries=None):
    """An annotations file and an image folder: `images` maps image id -> (width, height, file name)."""
    folder = root / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for width, height, name in images.values():
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(folder / name)
    references = references or {image_id: ["a dog runs on the grass"] for image_id in images}
    annotations = {
        "images": entries if entries is not None else [{"id": i, "file_name": name, "width": w, "height": h}
                                                       for i, (w, h, name) in images.items()],
        "annotations": [{"image_id": i, "id": 10 * i + k, "caption": c}
                        for i, captions in references.items() for k, c in enumerate(captions)],
    }
    (root / "captions.json").write_text(json.dumps(annotations))
    return root / "captions.json", folder


def caption_argv(annotations, folder, out, *more):
    return ["--annotations", annotations, "--img_dir", folder, "--out_results", out, *TINY, *more]


def test_a_very_thin_image_is_captioned_with_the_rest_of_its_batch(tmp_path, run_cli):
    """A 4000x10 image became 299x0 and crashed its batch (and every rerun); now both are captioned."""
    annotations, folder = make_coco(tmp_path, {1: (4000, 10, "thin.png"), 2: (64, 48, "plain.jpg")})
    out = tmp_path / "r.json"
    code, stdout, err = run_cli(eval_captions.main, caption_argv(annotations, folder, out, "--batch_size", "2"))
    assert code == 0, err
    assert [entry["image_id"] for entry in json.loads(out.read_text())] == [1, 2]
    assert last_json(stdout)["images"] == 2


@pytest.mark.parametrize("entries, message", [
    ([], "no 'images' entry has the id of a captioned image"),
    ([{"id": 99, "file_name": "a.jpg"}], "no 'images' entry has the id of a captioned image"),
])
def test_no_image_entry_for_the_captions_is_one_line(tmp_path, run_cli, entries, message):
    """`"images": []` or ids that match no caption gave StopIteration."""
    annotations, folder = make_coco(tmp_path, {1: (32, 32, "a.jpg")}, entries=entries)
    code, _, err = run_cli(eval_captions.main, caption_argv(annotations, folder, tmp_path / "r.json"))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_references_that_tokenise_to_nothing_are_one_line(tmp_path, run_cli):
    """References of punctuation only made pycocoevalcap's CIDEr raise ValueError."""
    annotations, _ = make_coco(tmp_path, {1: (32, 32, "a.jpg")}, references={1: ["...", "!!"]})
    results = write_results(tmp_path / "r.json", {1: "a cat"})
    code, _, err = run_cli(eval_captions.main, ["--annotations", annotations, "--results", results])
    assert code == 2 and "tokenise to nothing" in err and len(err.strip().splitlines()) == 1, err


def test_beam_wider_than_the_vocabulary_or_the_memory_is_refused(coco, tmp_path, run_cli, monkeypatch):
    """--beam 40000 ran until the kernel killed it; it is wider than the 30522 words. A beam and
    batch whose search needs more memory than is free are refused with the size."""
    argv = caption_argv(coco / "captions.json", coco / "val2017", tmp_path / "r.json")
    monkeypatch.setattr(catr.pipeline, "generate", lambda *a, **k: pytest.fail("the search ran"))
    code, _, err = run_cli(eval_captions.main, argv + ["--beam", "40000"])
    assert code == 2 and "wider than the vocabulary (30522 words)" in err, err
    monkeypatch.setattr(catr.cli, "device_memory", lambda device: 2**30)
    code, _, err = run_cli(eval_captions.main, argv + ["--beam", "2000", "--batch_size", "8"])
    assert code == 2 and "GiB for the search, and cpu has 1.0 GiB free" in err, err
    assert not (tmp_path / "r.json").exists()


def test_out_results_under_a_file_is_refused_before_any_work(coco, tmp_path, run_cli, monkeypatch):
    """--out_results under a file, or onto the annotations, is one line before captioning."""
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(eval_captions, "load_captioner", lambda *a: pytest.fail("the model was loaded"))
    for out, message in ((tmp_path / "file" / "r.json", "a file stands where its folder should be"),
                         (coco / "captions.json", "would overwrite the input")):
        code, _, err = run_cli(eval_captions.main, caption_argv(coco / "captions.json", coco / "val2017", out))
        assert code == 2 and message in err, err


def test_a_resume_with_other_settings_is_refused(coco, tmp_path, run_cli):
    """A results file begun greedy was completed with --beam 3 without a word."""
    out = tmp_path / "r.json"
    argv = caption_argv(coco / "captions.json", coco / "val2017", out)
    code, _, err = run_cli(eval_captions.main, argv + ["--limit", "1"])
    assert code == 0, err
    assert json.loads((tmp_path / "r.settings.json").read_text())["beam"] == 1
    code, _, err = run_cli(eval_captions.main, argv + ["--beam", "3"])
    assert code == 2 and "was begun with beam 1" in err and "asks for 3" in err, err
    assert len(json.loads(out.read_text())) == 1
    code, _, err = run_cli(eval_captions.main, argv)
    assert code == 0 and len(json.loads(out.read_text())) == 3, err


def test_limit_counts_the_images_it_scores(coco, tmp_path, run_cli):
    """--limit 1 on a 3-caption file printed 1 image and scored 3; with --results it was ignored."""
    out = tmp_path / "r.json"
    argv = caption_argv(coco / "captions.json", coco / "val2017", out)
    assert run_cli(eval_captions.main, argv)[0] == 0
    code, stdout, err = run_cli(eval_captions.main, argv + ["--limit", "1"])
    assert code == 0, err
    assert "1 images: 1 already in" in stdout and last_json(stdout)["images"] == 1
    assert "also holds 2 captions of images outside this run" in stdout
    code, stdout, err = run_cli(eval_captions.main, ["--annotations", coco / "captions.json", "--results", out,
                                                     "--limit", "2"])
    assert code == 0, err
    assert last_json(stdout)["images"] == 2 and "scoring the first 2 of the 3 images" in stdout


def test_an_image_listed_under_two_ids_is_reported_and_captioned_for_both(tmp_path, run_cli):
    """Two ids with one file name captioned one of them, silently."""
    entries = [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "a.jpg"}, {"id": 3, "file_name": "b.jpg"}]
    annotations, folder = make_coco(tmp_path, {1: (32, 32, "a.jpg"), 3: (32, 32, "b.jpg")},
                                    references={i: ["a dog"] for i in (1, 2, 3)}, entries=entries)
    out = tmp_path / "r.json"
    code, stdout, err = run_cli(eval_captions.main, caption_argv(annotations, folder, out))
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "more than one image id" in line]
    assert len(warnings) == 1 and "a.jpg: ids 1, 2" in warnings[0]
    results = {entry["image_id"]: entry["caption"] for entry in json.loads(out.read_text())}
    assert sorted(results) == [1, 2, 3] and results[1] == results[2]
    assert last_json(stdout)["images"] == 3


def test_a_temporary_left_by_a_kill_is_removed(coco, tmp_path, run_cli):
    """A `.r.json.*.tmp` left by `kill -9` during a write was never removed."""
    out = tmp_path / "r.json"
    stale = tmp_path / ".r.json.abc123.tmp"
    stale.write_text("[{")
    code, stdout, err = run_cli(eval_captions.main, caption_argv(coco / "captions.json", coco / "val2017", out,
                                                                 "--limit", "1"))
    assert code == 0, err
    assert not stale.exists() and f"removed {stale.name}" in stdout


def test_the_most_frequent_caption_is_counted_as_coco_tokenises_it():
    references = {1: ["A red circle.", "a blue square"], 2: ["a red circle", "A blue square!"], 3: ["a red circle"]}
    assert most_frequent_caption(references) == "a red circle"
    assert most_frequent_caption({1: ["b b", "a a"]}) == "a a"  # a tie: the first alphabetically
    with pytest.raises(UserError, match="no captions"):
        most_frequent_caption({})


def test_the_baseline_is_the_most_frequent_training_caption_for_every_image(coco, tmp_path, run_cli):
    train = {"images": [{"id": i, "file_name": f"{i}.jpg"} for i in (7, 8)],
             "annotations": [{"image_id": 7, "id": 1, "caption": "A dog runs on the grass."},
                             {"image_id": 8, "id": 2, "caption": "a dog runs on the grass"},
                             {"image_id": 8, "id": 3, "caption": "a cat"}]}
    (tmp_path / "train.json").write_text(json.dumps(train))
    results = write_results(tmp_path / "r.json", {1: "a dog on grass", 2: "two cats on a sofa", 3: "a bike"})
    argv = ["--annotations", coco / "captions.json", "--results", results]
    code, out, err = run_cli(eval_captions.main, argv + ["--baseline_from", tmp_path / "train.json"])
    assert code == 0, err
    record = last_json(out)
    assert record["baseline"]["caption"] == "a dog runs on the grass"
    repeated = write_results(tmp_path / "b.json", dict.fromkeys((1, 2, 3), "a dog runs on the grass"))
    _, alone, _ = run_cli(eval_captions.main, ["--annotations", coco / "captions.json", "--results", repeated])
    assert {m: record["baseline"][m] for m in METRICS} == {m: last_json(alone)[m] for m in METRICS}
    without = last_json(run_cli(eval_captions.main, argv)[1])
    assert {m: record[m] for m in METRICS} == {m: without[m] for m in METRICS} and "baseline" not in without
    assert "captioner" in out and "baseline" in out


def test_results_of_replaced_weights_or_another_image_folder_are_not_mixed(coco, tmp_path, run_cli):
    weights = tmp_path / "w.pt"
    torch.manual_seed(0)
    torch.save({"model": catr.build_model("tiny").state_dict()}, weights)
    out = tmp_path / "r.json"
    argv = ["--annotations", coco / "captions.json", "--out_results", out, "--weights", weights, "--config", "tiny",
            "--device", "cpu", "--max_steps", "3"]
    code, _, err = run_cli(eval_captions.main, argv + ["--img_dir", coco / "val2017", "--limit", "1"])
    assert code == 0, err
    torch.manual_seed(1)
    torch.save({"model": catr.build_model("tiny").state_dict()}, weights)  # another model, the same name
    code, _, err = run_cli(eval_captions.main, argv + ["--img_dir", coco / "val2017"])
    assert code == 2 and "was begun with weights" in err, err
    copy = tmp_path / "copy"
    copy.mkdir()
    for image in (coco / "val2017").iterdir():
        (copy / image.name).write_bytes(image.read_bytes())
    code, _, err = run_cli(eval_captions.main, argv + ["--img_dir", copy])
    assert code == 2 and "was begun with" in err, err
    assert len(json.loads(out.read_text())) == 1


def test_a_file_beside_the_results_that_is_not_their_settings_is_kept(coco, tmp_path, run_cli):
    """An unrelated r.settings.json was replaced by the settings record, exit 0."""
    notes = tmp_path / "r.settings.json"
    notes.write_text("my settings\n")
    code, _, err = run_cli(eval_captions.main, caption_argv(coco / "captions.json", coco / "val2017",
                                                            tmp_path / "r.json", "--limit", "1"))
    assert code == 2 and "is not the settings record of eval_captions.py" in err, err
    assert notes.read_text() == "my settings\n" and not (tmp_path / "r.json").exists()


def test_captions_without_their_settings_record_are_not_completed(coco, tmp_path, run_cli):
    """Results whose settings file was lost were adopted, and completed by another model."""
    out = tmp_path / "r.json"
    argv = caption_argv(coco / "captions.json", coco / "val2017", out)
    assert run_cli(eval_captions.main, argv + ["--limit", "1"])[0] == 0
    (tmp_path / "r.settings.json").unlink()
    code, _, err = run_cli(eval_captions.main, argv)
    assert code == 2 and "holds captions but no record of the settings" in err, err
    assert len(json.loads(out.read_text())) == 1


def test_a_second_captioning_of_one_results_file_is_refused_while_the_first_runs(coco, tmp_path, run_cli):
    out = tmp_path / "r.json"
    with lock_held_elsewhere(tmp_path / sidecar_name(out, "lock"), "eval_captions.py"):
        code, _, err = run_cli(eval_captions.main, caption_argv(coco / "captions.json", coco / "val2017", out))
    assert code == 2 and "is being written by another run (eval_captions.py, process" in err, err
    assert not out.exists()


def test_a_non_finite_or_overflowing_length_penalty_is_refused_before_any_work(coco, tmp_path, run_cli):
    for value, message in [("nan", "must be a finite number"), ("inf", "must be a finite number"),
                           ("1e300", "must be in [-10, 10)"), ("-1e300", "must be in [-10, 10)")]:
        code, _, err = run_cli(eval_captions.main, caption_argv(coco / "captions.json", coco / "val2017",
                                                                tmp_path / "r.json", "--beam", "2",
                                                                f"--length_penalty={value}"))
        assert code == 2 and f"--length_penalty {message}" in err, err
    assert not (tmp_path / "r.json").exists()
