"""eval_grounding.py never mixes, loses or misgrades: its cache knows its inputs, masks that cannot be
right are refused or left out by name, and an unreadable image follows --skip_bad_images."""
import json
import subprocess
import sys

import pytest
import torch
from PIL import Image

import catr
import eval_grounding
from catr.grounding import is_record
from data.io import sidecar_name
from tests.scripts.test_eval_grounding import make_coco

FAST = ["--config", "tiny", "--device", "cpu", "--no_progress", "--no_deletion", "--layers", "-1"]


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    return make_coco(tmp_path_factory.mktemp("coco"), images=2)


def _args(coco, *extra, img_dir=None, instances=None, captions=None):
    return ["--img_dir", img_dir or coco / "images", "--instances", instances or coco / "instances.json",
            "--words", coco / "words.txt", "--captions", captions or coco / "captions.json", *FAST, *extra]


def _weights(path, seed):
    torch.manual_seed(seed)
    torch.save({"model": catr.build_model("tiny").state_dict()}, path)
    return path


def _copied_images(coco, folder):
    folder.mkdir()
    for image in (coco / "images").iterdir():
        (folder / image.name).write_bytes(image.read_bytes())
    return folder


def _edited_instances(coco, tmp_path, edit):
    data = json.loads((coco / "instances.json").read_text())
    edit(data)
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return path


def test_a_cache_is_not_continued_with_replaced_weights_another_image_folder_or_changed_annotations(
        coco, tmp_path, run_cli):
    weights = _weights(tmp_path / "w.pt", 0)
    inputs = {"instances": tmp_path / "instances.json", "captions": tmp_path / "captions.json"}
    for name, path in inputs.items():
        path.write_text((coco / f"{name}.json").read_text())
    argv = _args(coco, "--weights", weights, "--cache", tmp_path / "c.jsonl", "--limit", 1, **inputs)
    code, _, stderr = run_cli(eval_grounding.main, argv)
    assert code == 0, stderr
    _weights(weights, 1)  # another model under the same name
    code, _, stderr = run_cli(eval_grounding.main, argv[:-2])
    assert code == 2 and "was begun with weights" in stderr, stderr
    _weights(weights, 0)
    copy = _copied_images(coco, tmp_path / "copy")
    code, _, stderr = run_cli(eval_grounding.main, _args(coco, "--weights", weights, "--cache", tmp_path / "c.jsonl",
                                                         img_dir=copy, **inputs))
    assert code == 2 and "was begun with img_dir" in stderr, stderr
    for name, path in inputs.items():  # the same file names, other content (an object added)
        original = path.read_text()
        data = json.loads(original)
        data["images"].append({"id": 99, "file_name": "000000000099.jpg", "width": 8, "height": 8})
        path.write_text(json.dumps(data))
        code, _, stderr = run_cli(eval_grounding.main, argv)
        assert code == 2 and f"was begun with {name}" in stderr, stderr
        path.write_text(original)


@pytest.mark.parametrize("text", ["my notes\n", "[1, 2, 3]\n", '{"settings": [1]}\n', ""])
def test_a_file_that_is_not_its_cache_is_refused_by_name_and_kept(coco, tmp_path, run_cli, text):
    notes = tmp_path / "notes.txt"
    notes.write_text(text)
    code, _, stderr = run_cli(eval_grounding.main, _args(coco, "--random_weights", "--cache", notes))
    assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert f"--cache {notes}" in stderr and "not a results cache" in stderr
    assert notes.read_text() == text


def test_a_cache_line_that_is_not_a_result_down_to_its_words_is_one_line_naming_it(coco, tmp_path, run_cli):
    cache = tmp_path / "c.jsonl"
    argv = _args(coco, "--random_weights", "--cache", cache, "--limit", 1)
    assert run_cli(eval_grounding.main, argv)[0] == 0
    settings, line = cache.read_text().splitlines()
    graded = json.loads(line)
    assert graded["words"] and is_record(graded, json.loads(settings)["settings"]["methods"])
    del graded["words"][0]["methods"]["random"]
    for line in ("[1, 2, 3]", '{"image_id": 1, "captions": []}', '{"image_id": 1, "captions": [], "words": [1, 2]}',
                 '{"image_id": 1, "captions": [], "words": [{"x": 1}]}',
                 '{"image_id": 1, "captions": [1], "words": []}', json.dumps(graded)):
        cache.write_text(f"{settings}\n{line}\n")
        code, _, stderr = run_cli(eval_grounding.main, argv)
        assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
        assert f"{cache}: line 2 is not a result of eval_grounding.py" in stderr, stderr


def test_without_a_cache_the_progress_line_names_none(coco, run_cli, monkeypatch):
    def stop(*_):
        raise eval_grounding.UserError("stopped before the model")
    monkeypatch.setattr(eval_grounding, "make_grader", stop)
    code, stdout, _ = run_cli(eval_grounding.main, _args(coco, "--random_weights"))
    assert code == 2 and "2 images: 2 to grade (" in stdout and "None" not in stdout, stdout


def test_a_run_that_fails_before_its_first_result_does_not_block_the_corrected_rerun(coco, tmp_path, run_cli,
                                                                                      monkeypatch):
    cache = tmp_path / "c.jsonl"
    argv = _args(coco, "--cache", cache, "--limit", 1)

    def offline(*_):
        raise eval_grounding.UserError("could not download the CATR v2 weights; pass --weights FILE")
    monkeypatch.setattr(eval_grounding, "load_captioner", offline)
    code, _, stderr = run_cli(eval_grounding.main, argv)
    assert code == 2 and "pass --weights" in stderr and not cache.exists()
    monkeypatch.undo()
    code, _, stderr = run_cli(eval_grounding.main, argv + ["--weights", _weights(tmp_path / "w.pt", 0)])
    assert code == 0, stderr


def test_a_second_run_on_one_cache_is_refused_while_the_first_holds_it(coco, tmp_path, run_cli):
    cache = tmp_path / "c.jsonl"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); fcntl.lockf(fd, fcntl.LOCK_EX); "
        "os.write(fd, b'the other run'); print('held', flush=True); sys.stdin.read()"),
        str(tmp_path / sidecar_name(cache, "lock"))], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, stderr = run_cli(eval_grounding.main, _args(coco, "--random_weights", "--cache", cache))
        assert code == 2 and "is being written by another run (the other run)" in stderr, stderr
    finally:
        holder.communicate("")


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["annotations"].append({**d["annotations"][0], "category_id": 2}),
     "'annotations': entries 0 and 4 have the same id 2"),
    pytest.param(lambda d: d["images"].append({**d["images"][1], "id": d["images"][0]["id"]}),
                 "'images': entries 0 and 2 have the same id 1", id="image-id-listed-twice"),
    pytest.param(lambda d: d["categories"].append({"id": 9, "name": "square"}),
                 "'categories': entries 0 and 3 have the same name 'square'", id="category-name-listed-twice"),
    pytest.param(lambda d: d["categories"].append({"id": 1, "name": "box"}),
                 "'categories': entries 0 and 3 have the same id 1", id="category-id-listed-twice"),
    (lambda d: d["annotations"][0].update(segmentation=[[float("nan")] * 8]), "finite numbers"),
    pytest.param(lambda d: d["annotations"][0].update(segmentation=[]), "a segmentation that is an empty list",
                 id="no-polygon"),
    pytest.param(lambda d: d["annotations"][0].update(segmentation=[[0, 0, 1e6, 0, 1e6, 1e6]]),
                 "point (1000000.0, 0) more than the image's size outside its 80x56 image 1",
                 id="polygon-point-far-outside"),
    (lambda d: d["annotations"][1]["segmentation"].update(counts=[10, 20], size=[56, 80]), "cover 30 pixels of 4480"),
    pytest.param(lambda d: d["annotations"][1]["segmentation"].update(counts="garbage!!"),
                 "whose counts are not run lengths", id="rle-string-of-other-characters"),
    pytest.param(lambda d: d["annotations"][1]["segmentation"].update(counts=d["annotations"][1]["segmentation"]
                                                                      ["counts"][:-3]),
                 "pixels of 4480", id="rle-string-cut-short"),
    pytest.param(lambda d: d["annotations"][1]["segmentation"].update(counts=""), "cover 0 pixels of 4480",
                 id="empty-rle-string"),
    pytest.param(lambda d: d["annotations"][1]["segmentation"].update(counts=[5000, -520]),
                 "whose counts are not run lengths", id="negative-rle-count"),
    (lambda d: d["images"][0].update(width=0), "width and height must be at least 1"),
    (lambda d: d["images"][0].update(height=-5), "width and height must be at least 1"),
])
def test_annotations_that_would_give_wrong_masks_are_one_line_before_the_model_loads(coco, tmp_path, run_cli,
                                                                                     monkeypatch, edit, message):
    monkeypatch.setattr(eval_grounding, "make_grader", lambda *_: pytest.fail("the model was loaded"))
    instances = _edited_instances(coco, tmp_path, edit)
    code, _, stderr = run_cli(eval_grounding.main, _args(coco, "--random_weights", instances=instances))
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_images_of_another_size_and_empty_masks_are_left_out_by_name(coco, tmp_path, run_cli):
    def edit(data):
        data["images"][1].update(width=56, height=80)  # as if the file were turned by its EXIF orientation
        data["annotations"][3]["segmentation"] = {"counts": [80 * 56], "size": [80, 56]}  # keep it valid
        data["annotations"][0]["segmentation"] = [[10, 10, 10, 10, 10, 10]]  # a polygon of one point: empty
    instances = _edited_instances(coco, tmp_path, edit)
    code, stdout, stderr = run_cli(eval_grounding.main, _args(coco, "--random_weights", instances=instances))
    assert code == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["left_out"] == {"images_of_another_size": 1, "words_with_empty_masks": 1}
    assert result["images"] == 1 and result["words"] == 1  # image 1's circle only
    assert "2 (80x56 upright, annotated 56x80)" in stderr and "square in 1" in stderr


def test_a_photograph_turned_by_its_exif_orientation_is_left_out_by_name(coco, tmp_path, run_cli):
    images = _copied_images(coco, tmp_path / "images")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: stored 80x56, shown turned a quarter to 56x80
    with Image.open(images / "000000000002.jpg") as picture:
        picture.load()
    picture.save(images / "000000000002.jpg", exif=exif)
    code, stdout, stderr = run_cli(eval_grounding.main, _args(coco, "--random_weights", img_dir=images))
    assert code == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["left_out"]["images_of_another_size"] == 1 and result["images"] == 1
    assert "1 images are left out" in stderr and "2 (56x80 upright, annotated 80x56)" in stderr, stderr


def test_no_gradable_word_is_an_error_not_a_table_of_dashes(coco, tmp_path, run_cli):
    def edit(data):
        for annotation in data["annotations"]:
            annotation["segmentation"] = [[10, 10, 10, 10, 10, 10]]
            annotation["iscrowd"] = 0
    instances = _edited_instances(coco, tmp_path, edit)
    code, stdout, stderr = run_cli(eval_grounding.main, _args(coco, "--random_weights", instances=instances))
    assert code == 2 and "no word could be graded" in stderr and "| - |" not in stdout


def test_an_unreadable_image_stops_the_run_unless_skipped(coco, tmp_path, run_cli):
    images = _copied_images(coco, tmp_path / "images")
    (images / "000000000002.jpg").write_bytes(b"not a jpeg")
    code, _, stderr = run_cli(eval_grounding.main, _args(coco, "--random_weights", img_dir=images))
    assert code == 2 and "000000000002.jpg" in stderr and "--skip_bad_images" in stderr
    code, stdout, stderr = run_cli(eval_grounding.main, _args(coco, "--random_weights", "--skip_bad_images",
                                                              img_dir=images))
    assert code == 0 and json.loads(stdout.strip().splitlines()[-1])["unreadable_images"] == 1, stderr


def test_a_non_finite_length_penalty_is_refused(coco, run_cli):
    for value in ("nan", "inf", "-inf"):
        code, _, stderr = run_cli(eval_grounding.main, [
            "--img_dir", coco / "images", "--instances", coco / "instances.json", "--generate", "--random_weights",
            *FAST, "--beam", "2", f"--length_penalty={value}"])
        assert code == 2 and "--length_penalty must be a finite number" in stderr, stderr


def test_a_results_entry_of_an_unknown_image_names_the_image_not_missing_captions(coco, tmp_path, run_cli):
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": 77, "caption": "a square"}]))
    argv = ["--img_dir", coco / "images", "--instances", coco / "instances.json", "--words", coco / "words.txt",
            "--results", results, "--random_weights", *FAST]
    code, _, stderr = run_cli(eval_grounding.main, argv)
    assert code == 2 and "image id 77, which is not among the annotated images of" in stderr
    assert "captions in" not in stderr


def test_a_caption_too_long_for_the_captioner_names_its_file_and_image(coco, tmp_path, run_cli):
    data = json.loads((coco / "captions.json").read_text())
    data["annotations"][2]["caption"] = "a square " * 70  # image 2's first caption: 140 tokens
    captions = tmp_path / "captions.json"
    captions.write_text(json.dumps(data))
    argv = _args(coco, "--random_weights")
    argv[argv.index("--captions") + 1] = captions
    code, _, stderr = run_cli(eval_grounding.main, argv)
    assert code == 2 and stderr.startswith(f"error: {captions}, image id 2: caption") and "at most 126" in stderr
