"""scripts/train_captioner.py: resuming, its checkpoints in the problem-2 scripts, one-line errors."""
import csv
import json
import shutil

import pytest
import torch
from PIL import Image

import catr
import eval_captions
import eval_grounding
import p2_vis_caption
import train_captioner
from catr.checkpoint import config_record
from data.synthetic_captions import make_captioned_set

FAST = ["--config", "tiny", "--no_pretrained", "--image_size", "48", "--batch_size", "8", "--lr", "3e-3",
        "--score_images", "2", "--max_steps", "4", "--device", "cpu", "--no_progress"]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return make_captioned_set(tmp_path_factory.mktemp("scenes") / "set", seed=3, n_train=4, n_val=2, size=48)


@pytest.fixture(scope="module")
def trained(scenes, tmp_path_factory):
    """A finished 2-epoch run (frozen backbone, features cached) and its folder."""
    run = tmp_path_factory.mktemp("runs") / "cached"
    train_captioner.main([str(a) for a in ["--data_dir", scenes, "--output_dir", run, "--epochs", "2",
                                           "--freeze_backbone", "--cache_features", *FAST]])
    return run


def _metrics(run):
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


@pytest.mark.parametrize("vocabulary", [[], ["--closed_vocabulary"]])
def test_a_resumed_run_ends_with_the_metrics_of_an_uninterrupted_one(scenes, tmp_path, run_cli, vocabulary):
    whole, halves = tmp_path / "whole", tmp_path / "halves"
    for run, epochs in ((whole, "2"), (halves, "1")):
        argv = ["--data_dir", scenes, "--output_dir", run, "--epochs", epochs, *vocabulary, *FAST]
        assert run_cli(train_captioner.main, argv)[0] == 0
    code, out, err = run_cli(train_captioner.main, ["--output_dir", halves, "--resume", "--epochs", "2",
                                                    "--data_dir", scenes, "--no_progress"])
    assert code == 0, err
    assert _metrics(halves) == _metrics(whole) and len(_metrics(whole)) == 2
    assert set(_metrics(whole)[0]) >= {"train_loss", "val_loss", "val_bleu4", "val_cider"}
    config = json.loads((whole / "config.json").read_text())
    assert config["catr"]["image_size"] == 48 and config["catr"]["hidden_dim"] == 32


def test_a_closed_vocabulary_is_the_training_captions_word_pieces_and_stays_closed(scenes, tmp_path, run_cli):
    from catr.caption_data import CaptionPairs, read_caption_split
    from catr.captioner import close_vocabulary, open_output_ids
    from catr.tokenizer import load_tokenizer
    from catr.training import caption_vocabulary
    run = tmp_path / "closed"
    argv = ["--data_dir", scenes, "--output_dir", run, "--epochs", "1", "--closed_vocabulary", *FAST]
    assert run_cli(train_captioner.main, argv)[0] == 0
    model = catr.load_model(weights=run / "best.pt")
    split = read_caption_split(scenes / "annotations" / "captions_train.json", scenes / "train",
                               load_tokenizer().encode)
    assert open_output_ids(model).tolist() == caption_vocabulary(CaptionPairs(split, 48))
    assert catr.SEP_ID in caption_vocabulary(CaptionPairs(split, 48))
    # Weights closed to other words train no further on these captions: one line, nothing written.
    close_vocabulary(model, [catr.SEP_ID])
    torch.save({"model": model.state_dict(), "config": {"catr": config_record(model.config)}}, tmp_path / "narrow.pt")
    fast = [a for a in FAST if a != "--no_pretrained"]
    _one_line_error(run_cli, train_captioner.main, ["--data_dir", scenes, "--output_dir", tmp_path / "again",
                                                    "--weights", tmp_path / "narrow.pt", *fast], "closed")
    assert not (tmp_path / "again" / "last.pt").exists()


def test_weights_of_a_small_captioner_name_their_own_configuration(trained, scenes, tmp_path, run_cli, capsys):
    run = tmp_path / "on"
    fast = [a for a in FAST if a not in ("--config", "tiny", "--no_pretrained")]
    code, stdout, stderr = run_cli(train_captioner.main, ["--data_dir", scenes, "--output_dir", run, "--epochs", "1",
                                                          "--weights", trained / "best.pt", *fast])
    assert code == 0, stderr
    assert "CATR tiny at 48px" in stdout
    assert json.loads((run / "config.json").read_text())["config"] == "tiny"


def test_a_random_backbone_is_calibrated_on_the_training_images(trained):
    from torchvision.ops import FrozenBatchNorm2d

    from catr.captioner import CONFIGS, build_model
    state = torch.load(trained / "best.pt", map_location="cpu", weights_only=False)["model"]
    variances = [value for key, value in state.items() if key.endswith("running_var")]
    assert variances and all(not torch.equal(v, torch.ones_like(v)) for v in variances)
    fresh = [m.running_var for m in build_model(CONFIGS["tiny"]).modules() if isinstance(m, FrozenBatchNorm2d)]
    assert all(torch.equal(v, torch.ones_like(v)) for v in fresh)  # identity statistics, before calibration


def test_random_weights_with_one_training_image_is_one_line(tmp_path, run_cli):
    one = make_captioned_set(tmp_path / "one", seed=3, n_train=1, n_val=1, size=48)
    code, out, err = run_cli(train_captioner.main, ["--data_dir", one, "--output_dir", tmp_path / "run",
                                                    "--epochs", "1", *FAST])
    assert code == 2 and "at least 2 training images" in err and len(err.strip().splitlines()) == 1


def test_the_checkpoint_loads_in_every_problem_2_script(trained, scenes, tmp_path, run_cli):
    weights = ["--weights", trained / "best.pt", "--device", "cpu", "--max_steps", "4"]
    val = scenes / "val"
    image = sorted(val.iterdir())[0]
    code, out, err = run_cli(p2_vis_caption.main, ["--images", image, "--out_dir", tmp_path / "fig", "--save_npy",
                                                   *weights])
    assert code == 0, err
    assert (tmp_path / "fig" / f"{image.stem}.png").is_file()
    # 48 px as trained, not CATR's 299: a 3 x 3 feature grid
    import numpy as np
    assert np.load(tmp_path / "fig" / f"{image.stem}.npy").shape[1:] == (3, 3)
    code, out, err = run_cli(eval_captions.main, ["--annotations", scenes / "annotations" / "captions_val.json",
                                                  "--img_dir", val, "--out_results", tmp_path / "r.json", *weights])
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["images"] == 2
    code, out, err = run_cli(eval_grounding.main, [
        "--img_dir", val, "--instances", scenes / "annotations" / "instances_val.json",
        "--captions", scenes / "annotations" / "captions_val.json",
        "--words", scenes / "annotations" / "object_words.txt", "--no_deletion", "--no_progress",
        "--out_json", tmp_path / "g.json", "--weights", trained / "best.pt", "--device", "cpu"])
    assert code == 0, err


def _one_line_error(run_cli, main, argv, *phrases):
    code, out, err = run_cli(main, argv)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    for phrase in phrases:
        assert phrase in err, err


def _image(tmp_path):
    """An image to caption, outside the output folder."""
    path = tmp_path / "in" / "x.png"
    path.parent.mkdir(exist_ok=True)
    Image.new("RGB", (40, 30), "red").save(path)
    return path


def _edited_set(scenes, tmp_path, edit):
    data = tmp_path / "set"
    shutil.copytree(scenes, data)
    path = data / "annotations" / "captions_train.json"
    captions = json.loads(path.read_text())
    edit(captions)
    path.write_text(json.dumps(captions))
    return data


@pytest.mark.parametrize("edit, phrase", [
    (lambda c: c.update(images=[], annotations=[]), "lists no images"),
    (lambda c: c.update(annotations=[a for a in c["annotations"] if a["image_id"] != c["images"][0]["id"]]),
     "has no captions"),
    (lambda c: c["annotations"][0].update(caption=""), "caption 0 (image id"),
    (lambda c: c["annotations"][1].update(caption=" ... !"), "holds no word"),
])
def test_bad_captions_are_one_line(scenes, tmp_path, run_cli, edit, phrase):
    data = _edited_set(scenes, tmp_path, edit)
    _one_line_error(run_cli, train_captioner.main, ["--data_dir", data, "--output_dir", tmp_path / "run", *FAST],
                    phrase)
    assert not (tmp_path / "run").exists()


def test_a_training_caption_too_long_is_named_by_its_file_and_entry(scenes, tmp_path, run_cli):
    data = _edited_set(scenes, tmp_path, lambda c: c["annotations"][1].update(caption="a square " * 70))
    image_id = json.loads((data / "annotations" / "captions_train.json").read_text())["annotations"][1]["image_id"]
    _one_line_error(run_cli, train_captioner.main, ["--data_dir", data, "--output_dir", tmp_path / "run", *FAST],
                    f"captions_train.json: caption 1 (image id {image_id}): ", "is 140 WordPiece tokens; at most 126")
    assert not (tmp_path / "run").exists()


def test_validation_references_without_a_word_and_a_run_inside_its_data_are_refused_before_training(
        scenes, tmp_path, run_cli):
    data = tmp_path / "set"
    shutil.copytree(scenes, data)
    path = data / "annotations" / "captions_val.json"
    captions = json.loads(path.read_text())
    for annotation in captions["annotations"]:
        annotation["caption"] = "..."
    path.write_text(json.dumps(captions))
    _one_line_error(run_cli, train_captioner.main, ["--data_dir", data, "--output_dir", tmp_path / "run", *FAST],
                    "captions_val.json", "holds no word")
    assert not (tmp_path / "run").exists()
    _one_line_error(run_cli, train_captioner.main, ["--data_dir", scenes, "--output_dir", scenes / "run", *FAST],
                    "inside the input folder")
    assert not (scenes / "run").exists()


def test_a_checkpoint_of_another_configuration_is_one_line(trained, tmp_path, run_cli):
    ckpt = torch.load(trained / "best.pt", weights_only=True)
    ckpt["config"]["catr"]["dec_layers"] = 2  # the weights hold 3 decoder layers
    torch.save(ckpt, tmp_path / "other.pt")
    bare = {"model": ckpt["model"]}  # a published-style file of the tiny weights, read as the catr architecture
    torch.save(bare, tmp_path / "bare.pt")
    for path, phrase in ((tmp_path / "other.pt", "configuration it records"), (tmp_path / "bare.pt", "architecture")):
        _one_line_error(run_cli, p2_vis_caption.main, ["--images", _image(tmp_path), "--out_dir", tmp_path / "out", "--weights", path],
                        "does not match", phrase)


def test_a_classifier_checkpoint_is_one_line(tmp_path, run_cli):
    from models.checkpoint import save_checkpoint
    save_checkpoint(tmp_path / "vit.pt", {"w": torch.zeros(1)}, {"model": "tiny"})
    _one_line_error(run_cli, p2_vis_caption.main, ["--images", _image(tmp_path), "--out_dir", tmp_path / "out", "--weights",
                                                   tmp_path / "vit.pt"], "another model")


CAPTION_CONFIG_EDITS = [  # (where in config.json, the hand-edited value, what the one line says)
    (("lr",), "3e-3", "'lr' must be a finite number, not \"3e-3\""),
    (("precision",), "fp16", "'precision' must be one of bf16, fp32, not \"fp16\""),
    (("score_images",), 1.5, "'score_images' must be a whole number, not 1.5"),
    (("catr", "hidden_dim"), "32", "'catr' 'hidden_dim' must be a whole number, not \"32\""),
    (("catr", "nheads"), 5, "'catr' 'hidden_dim' 32 must be a multiple of 'nheads' 5"),
    (("catr", "dropout"), 1.5, "'catr' 'dropout' must be in [0, 1), not 1.5"),
    (("catr",), None, "lacks 'catr'"),
]


@pytest.mark.parametrize("where, value, says", CAPTION_CONFIG_EDITS)
def test_a_hand_edited_captioner_config_json_is_one_line(trained, tmp_path, run_cli, where, value, says):
    """train_captioner: config.json is checked by the same rules as the flags before anything
    runs (a string for a number, an unknown precision, a CATR configuration that cannot be built)."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    config = json.loads((run / "config.json").read_text())
    *parents, field = where
    holder = config
    for key in parents:
        holder = holder[key]
    if value is None:
        del holder[field]
    else:
        holder[field] = value
    (run / "config.json").write_text(json.dumps(config))
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    _one_line_error(run_cli, train_captioner.main, ["--output_dir", run, "--resume", "--epochs", "3"],
                    f"{run / 'config.json'}{'' if value is None else ':'} {says}")
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before


def test_a_captioner_checkpoint_edited_by_hand_is_one_line(trained, tmp_path, run_cli):
    """A checkpoint's CATR configuration is checked by the same rules where it is read."""
    ckpt = torch.load(trained / "best.pt", weights_only=True)
    ckpt["config"]["catr"]["vocab_size"] = 0
    torch.save(ckpt, tmp_path / "edited.pt")
    _one_line_error(run_cli, p2_vis_caption.main, ["--images", _image(tmp_path), "--out_dir", tmp_path / "out", "--weights",
                                                   tmp_path / "edited.pt"],
                    f"{tmp_path / 'edited.pt'}: config['catr'] 'vocab_size' must be at least 1, not 0")


def test_another_runs_last_pt_on_resume_is_one_line(trained, tmp_path, run_cli):
    """train_captioner: a last.pt written with other settings than config.json's is refused."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    config = json.loads((run / "config.json").read_text())
    config["lr_backbone"] = 0.5
    (run / "config.json").write_text(json.dumps(config))
    _one_line_error(run_cli, train_captioner.main, ["--output_dir", run, "--resume", "--epochs", "3"],
                    "last.pt was written with lr_backbone = ", "says 0.5: it is not this run's checkpoint")
