"""p1_inference.py, models/training/predict.py and scripts/p1_inference.sh on a 'micro' model and tiny images."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import p1_inference
from data.images import open_rgb
from data.entry import run_main
from data.pets import CLASS_NAMES
from data.transforms import eval_transform_from_config
from models.checkpoint import model_config, save_checkpoint
from models.training.predict import confusion_matrix, per_class_accuracy, predict
from models.vit import build_vit, random_vit
from tests.support import huge_png
from tests.support import ROOT



def micro_config(model="micro", image_size=32):
    return model_config(model, image_size)


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    """(checkpoint path, the same model with the package's explicit attention, its config)."""
    torch.manual_seed(0)
    model = random_vit("micro")
    torch.nn.init.normal_(model.fc.bias)
    path = tmp_path_factory.mktemp("ckpt") / "micro.pt"
    save_checkpoint(path, model, micro_config())
    return path, model.eval(), micro_config()


def random_image(rng, mode="RGB", size=(50, 38)):
    pixels = rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8)
    image = Image.fromarray(pixels, mode="RGBA")
    return image if mode == "RGBA" else image.convert(mode)


def direct_predictions(model, config, files):
    """The argmax of the model applied to each eval-transformed image, one image at a time."""
    transform = eval_transform_from_config(config)
    with torch.no_grad():
        return [model(transform(open_rgb(f))[None]).argmax(1).item() for f in files]


def read_csv_lines(path):
    raw = Path(path).read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    return raw.decode("utf-8").splitlines()


def run(argv, capsys):
    """Run p1_inference as its script does: (exit code, stdout, stderr)."""
    try:
        run_main(lambda: p1_inference.main([str(a) for a in argv]))
        code = 0
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def test_mixed_names_one_row_per_image_equal_to_direct_argmax(micro, tmp_path, capsys):
    ckpt, model, config = micro
    rng = np.random.default_rng(1)
    folder = tmp_path / "test"
    folder.mkdir()
    random_image(rng).save(folder / "1.jpg")
    random_image(rng, size=(64, 48)).save(folder / "cat_2.JPG", format="JPEG")
    random_image(rng, size=(30, 40)).save(folder / "x.png")
    random_image(rng, "L").save(folder / "gray.jpeg")
    random_image(rng, "RGBA").save(folder / "rgba.PNG", format="PNG")
    (folder / "notes.txt").write_text("not an image")
    out_csv = tmp_path / "out" / "pred.csv"

    code, out, err = run(["--ckpt", ckpt, "--img_dir", folder, "--out_csv", out_csv,
                          "--batch_size", 2, "--num_workers", 0], capsys)

    assert code == 0, err
    assert "notes.txt" in err and "warning" in err
    lines = read_csv_lines(out_csv)
    assert lines[0] == "filename,label"
    rows = [line.split(",") for line in lines[1:]]
    names = [name for name, _ in rows]
    assert names == sorted(["1.jpg", "cat_2.JPG", "x.png", "gray.jpeg", "rgba.PNG"])
    labels = [int(label) for _, label in rows]
    assert all(0 <= label < 37 for label in labels)
    assert labels == direct_predictions(model, config, [folder / n for n in names])
    assert "accuracy" not in out  # no label in these names: never parse one from a test file name
    assert re.search(r"time: 5 images in [\d.]+ s, [\d.]+ images/s", out)


@pytest.fixture(scope="module")
def labeled_folder(micro, tmp_path_factory):
    """Val-style `{label}_{id}.png` files named so that exactly `correct` of them match the model."""
    _, model, config = micro
    rng = np.random.default_rng(2)
    staging = tmp_path_factory.mktemp("staging")
    files = []
    for i in range(12):
        random_image(rng).save(staging / f"{i}.png")
        files.append(staging / f"{i}.png")
    predicted = direct_predictions(model, config, files)
    folder = tmp_path_factory.mktemp("val")
    correct = 0
    for i, (path, label) in enumerate(zip(files, predicted)):
        if i % 3 == 0:
            label = (label + 1) % 37  # wrong on purpose
        else:
            correct += 1
        path.rename(folder / f"{label}_{1000 + i}.png")
    return folder, correct, len(files)


def test_accuracy_printed_equals_a_count(micro, labeled_folder, tmp_path, capsys):
    ckpt, model, config = micro
    folder, correct, total = labeled_folder
    confusion_png = tmp_path / "confusion.png"

    code, out, err = run(["--ckpt", ckpt, "--img_dir", folder, "--out_csv", tmp_path / "pred.csv",
                          "--num_workers", 1, "--confusion", confusion_png], capsys)

    assert code == 0, err
    assert f"accuracy: {100 * correct / total:.2f}% ({correct}/{total})" in out
    # per-class lines agree with the file names and the CSV
    rows = [line.split(",") for line in read_csv_lines(tmp_path / "pred.csv")[1:]]
    for label in {int(name.split("_")[0]) for name, _ in rows}:
        mine = [int(pred) == label for name, pred in rows if int(name.split("_")[0]) == label]
        line = f"{label:2d} {CLASS_NAMES[label]:<28s} {100 * sum(mine) / len(mine):6.2f}% ({sum(mine)}/{len(mine)})"
        assert line in out
    assert confusion_png.read_bytes().startswith(b"\x89PNG")


def write_other_model_checkpoint(path):
    """Our format and a 'micro' config, but the weights of the larger 'tiny' model."""
    save_checkpoint(path, build_vit("tiny", pretrained=False), micro_config())


@pytest.fixture(scope="module")
def bad_inputs(micro, tmp_path_factory):
    """name -> (the options that differ from a good run, what the error line must mention)."""
    ckpt, model, _ = micro
    tmp = tmp_path_factory.mktemp("bad")
    bare, foreign, other = tmp / "bare.pt", tmp / "foreign.pt", tmp / "other.pt"
    torch.save(model.state_dict(), bare)
    torch.save({"model": model.state_dict(), "epoch": 3}, foreign)
    # our format and a 'micro' config, but the weights of the larger 'tiny' model
    save_checkpoint(other, build_vit("tiny", pretrained=False), micro_config())
    for name in ("empty", "text_only", "corrupt", "a_folder.csv"):
        (tmp / name).mkdir()
    (tmp / "text_only" / "notes.txt").write_text("x")
    random_image(np.random.default_rng(0)).save(tmp / "corrupt" / "good.jpg")
    (tmp / "corrupt" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (tmp / "a_file").write_text("x")
    (tmp / "labeled").mkdir()
    random_image(np.random.default_rng(0)).save(tmp / "labeled" / "3_1.jpg")
    (tmp / "bomb").mkdir()
    random_image(np.random.default_rng(0)).save(tmp / "bomb" / "good.jpg")
    huge_png(tmp / "bomb" / "huge.png")
    incomplete = tmp / "incomplete.pt"
    config = micro_config()
    del config["image_size"]
    save_checkpoint(incomplete, model, config)
    return {
        "missing checkpoint": ({"--ckpt": tmp / "nope.pt"}, "nope.pt"),
        "bare state dict": ({"--ckpt": bare}, "bare.pt"),
        "another program's checkpoint": ({"--ckpt": foreign}, "foreign.pt"),
        "checkpoint of another model": ({"--ckpt": other}, "micro"),
        "empty folder": ({"--img_dir": tmp / "empty"}, "empty"),
        "missing folder": ({"--img_dir": tmp / "missing"}, "missing"),
        "folder without images": ({"--img_dir": tmp / "text_only"}, "text_only"),
        "corrupt image": ({"--img_dir": tmp / "corrupt"}, "broken.jpg"),
        "output under a file": ({"--out_csv": tmp / "a_file" / "pred.csv"}, "a_file"),
        "output is a folder": ({"--out_csv": tmp / "a_folder.csv"}, "a_folder.csv"),
        "confusion without labels": ({"--confusion": tmp / "c.png"}, "--confusion"),
        "decompression bomb": ({"--img_dir": tmp / "bomb"}, "huge.png"),
        "checkpoint without image_size": ({"--ckpt": incomplete}, "lacks config['image_size']"),
        "confusion figure as text": ({"--img_dir": tmp / "labeled", "--confusion": tmp / "c.txt"}, "--confusion"),
    }


BAD_INPUT_NAMES = ["missing checkpoint", "bare state dict", "another program's checkpoint",
                   "checkpoint of another model", "empty folder", "missing folder",
                   "folder without images", "corrupt image", "output under a file",
                   "output is a folder", "confusion without labels", "decompression bomb",
                   "checkpoint without image_size", "confusion figure as text"]


@pytest.mark.parametrize("case", BAD_INPUT_NAMES)
def test_bad_input_one_line_nonzero_exit_no_csv(micro, bad_inputs, tmp_path, capsys, case):
    unlabeled = tmp_path / "unlabeled"
    unlabeled.mkdir()
    random_image(np.random.default_rng(0)).save(unlabeled / "a.jpg")
    out_csv = tmp_path / "out" / "pred.csv"
    options = {"--ckpt": micro[0], "--img_dir": unlabeled, "--out_csv": out_csv, "--num_workers": 0}
    change, mention = bad_inputs[case]
    options.update(change)

    code, out, err = run([item for pair in options.items() for item in pair], capsys)

    assert code == 2
    lines = [line for line in err.splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error:") and mention in lines[0], err
    assert not out_csv.exists()
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*.csv"))


def test_skip_bad_images_leaves_them_out_with_a_warning(micro, bad_inputs, tmp_path, capsys):
    corrupt = bad_inputs["corrupt image"][0]["--img_dir"]
    code, _, err = run(["--ckpt", micro[0], "--img_dir", corrupt, "--out_csv", tmp_path / "pred.csv",
                        "--num_workers", 0, "--skip_bad_images"], capsys)
    assert code == 0, err
    assert "broken.jpg" in err
    assert [line.split(",")[0] for line in read_csv_lines(tmp_path / "pred.csv")] == ["filename", "good.jpg"]


def test_skip_bad_images_leaves_a_decompression_bomb_out(micro, bad_inputs, tmp_path, capsys):
    code, _, err = run(["--ckpt", micro[0], "--img_dir", bad_inputs["decompression bomb"][0]["--img_dir"],
                        "--out_csv", tmp_path / "pred.csv", "--num_workers", 0, "--skip_bad_images"], capsys)
    assert code == 0, err
    assert "huge.png" in err
    assert [line.split(",")[0] for line in read_csv_lines(tmp_path / "pred.csv")] == ["filename", "good.jpg"]


def test_any_name_is_predicted_even_with_a_unicode_digit(micro, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("²_1.png", "0_2.png"):
        random_image(np.random.default_rng(1)).save(folder / name)
    code, out, err = run(["--ckpt", micro[0], "--img_dir", folder, "--out_csv", tmp_path / "pred.csv",
                          "--num_workers", 0], capsys)
    assert code == 0, err
    assert [line.split(",")[0] for line in read_csv_lines(tmp_path / "pred.csv")[1:]] == ["0_2.png", "²_1.png"]
    assert "accuracy" not in out  # not every name carries a label


def test_item_06_a_name_that_is_not_utf8_is_refused_before_any_work(micro, tmp_path, capsys, monkeypatch):
    """Item 6: a file named b'\\xffd.jpg' crashed with UnicodeEncodeError after predicting, leaving no CSV."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    random_image(np.random.default_rng(1)).save(folder / "0_1.png")
    try:
        random_image(np.random.default_rng(2)).save(os.fsdecode(bytes(folder) + b"/\xffd.jpg"))
    except OSError:  # a file system that allows only UTF-8 names cannot hold the case
        pytest.skip("this file system refuses names that are not UTF-8")
    monkeypatch.setattr(p1_inference, "model_from_checkpoint", None)  # refused before the model loads
    code, _, err = run(["--ckpt", micro[0], "--img_dir", folder, "--out_csv", tmp_path / "pred.csv"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "1 file name(s) in" in err and "are not valid UTF-8" in err and "(\\xffd.jpg)" in err
    assert not (tmp_path / "pred.csv").exists()


def test_failed_run_keeps_the_previous_csv(micro, tmp_path, capsys):
    out_csv = tmp_path / "pred.csv"
    out_csv.write_text("filename,label\nold.jpg,3\n")
    code, _, _ = run(["--ckpt", micro[0], "--img_dir", tmp_path / "missing", "--out_csv", out_csv], capsys)
    assert code == 2
    assert out_csv.read_text() == "filename,label\nold.jpg,3\n"


def shell(args, cwd, env=None):
    return subprocess.run(["bash", str(ROOT / "scripts" / "p1_inference.sh"), *map(str, args)], cwd=cwd,
                          env={**os.environ, **(env or {}), "PYTHON": sys.executable},
                          capture_output=True, text=True, timeout=120)


def test_grader_script_through_a_link_from_another_folder(micro, labeled_folder, tmp_path):
    """Relative paths from the caller's folder, names starting with '-', the script called by a link."""
    folder, _, total = labeled_folder
    (tmp_path / "-imgs").symlink_to(folder, target_is_directory=True)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "predict.sh").symlink_to(ROOT / "scripts" / "p1_inference.sh")

    done = subprocess.run(["bash", "bin/predict.sh", "-imgs", "-pred.csv", micro[0]], cwd=tmp_path,
                          env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    lines = read_csv_lines(tmp_path / "-pred.csv")
    assert lines[0] == "filename,label" and len(lines) == total + 1


def test_grader_script_without_checkpoint_says_how_to_get_one(tmp_path):
    done = shell([tmp_path, tmp_path / "pred.csv"], cwd=tmp_path, env={"P1_CKPT": str(tmp_path / "none.pt")})

    assert done.returncode != 0
    assert "none.pt" in done.stderr and "p1_train.py" in done.stderr
    assert not (tmp_path / "pred.csv").exists()


def test_grader_script_usage():
    done = shell(["only_one_arg"], cwd=ROOT)
    assert done.returncode == 2 and "usage" in done.stderr


def test_predict_keeps_loader_order_and_targets(micro):
    _, model, _ = micro
    images = torch.randn(7, 3, 32, 32)
    loader = torch.utils.data.DataLoader(list(zip(images, range(7))), batch_size=3)
    logits, targets = predict(model, loader)
    assert targets.tolist() == list(range(7))
    with torch.no_grad():
        torch.testing.assert_close(logits, model(images), rtol=1e-4, atol=1e-4)


def test_confusion_matrix_and_per_class_accuracy():
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    predictions = torch.tensor([0, 1, 1, 1, 0, 2])
    confusion = confusion_matrix(predictions, labels, num_classes=4)
    assert confusion.tolist() == [[1, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    acc = per_class_accuracy(confusion)
    torch.testing.assert_close(acc[:3], torch.tensor([50.0, 200 / 3, 100.0], dtype=torch.float64))
    assert torch.isnan(acc[3])



def test_the_checkpoints_own_normalisation_is_applied_on_the_device(micro, tmp_path, capsys):
    """Workers hand over uint8 images; the mean and std that normalise them come from the checkpoint."""
    _, model, _ = micro
    config = {**micro_config(), "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    ckpt = tmp_path / "imagenet_norm.pt"
    save_checkpoint(ckpt, model, config)
    rng = np.random.default_rng(5)
    folder = tmp_path / "test"
    folder.mkdir()
    for i in range(6):
        random_image(rng).save(folder / f"{i}.png")
    code, _, err = run(["--ckpt", ckpt, "--img_dir", folder, "--out_csv", tmp_path / "pred.csv", "--num_workers", 0],
                       capsys)
    assert code == 0, err
    labels = [int(line.split(",")[1]) for line in read_csv_lines(tmp_path / "pred.csv")[1:]]
    files = [folder / f"{i}.png" for i in range(6)]
    assert labels == direct_predictions(model, config, files)
    assert labels != direct_predictions(model, micro_config(), files)  # the normalisation matters here


def test_a_folder_named_double_dash_is_one_line(ckpt, tmp_path, run_cli):
    # What p1_inference.sh passes for `p1_inference.sh -- out.csv`: argparse reads it as no value.
    code, _, err = run_cli(p1_inference.main, ["--ckpt", ckpt, "--img_dir=--", "--out_csv", tmp_path / "o.csv"])
    assert code == 2 and err == "error: --img_dir needs a folder; for a folder named '--', write ./--\n"
