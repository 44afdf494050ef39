"""scripts/pretrain_backbone.py: the labels it learns, the checkpoint train_captioner.py starts from, one-line errors."""
import json

import pytest
import torch

import catr
import pretrain_backbone
import train_captioner
from catr.backbone_training import LabelledImages, train_backbone
from catr.captioner import CONFIGS, build_model
from data.io import UserError
from data.synthetic_captions import make_captioned_set

FAST = ["--config", "tiny_narrow", "--image_size", "48", "--batch_size", "4", "--device", "cpu", "--no_progress"]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return make_captioned_set(tmp_path_factory.mktemp("scenes") / "set", seed=4, n_train=6, n_val=2, size=48)


def test_the_labels_are_each_images_categories_and_colours(scenes):
    images = LabelledImages(scenes / "annotations" / "instances_train.json", scenes / "train", 48)
    data = json.loads((scenes / "annotations" / "instances_train.json").read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    for row, image_id in enumerate(images.image_ids):
        shapes = [a for a in data["annotations"] if a["image_id"] == image_id]
        expected = {names[a["category_id"]] for a in shapes} | {f"{a['colour']} (colour)" for a in shapes}
        assert {images.label_names[k] for k in images.targets[row].nonzero().flatten().tolist()} == expected
    assert images.image(0).shape == (3, 48, 48) and images.image(0).dtype == torch.uint8
    val = LabelledImages(scenes / "annotations" / "instances_val.json", scenes / "val", 48,
                         label_names=images.label_names)
    assert val.label_names == images.label_names and val.targets.shape == (2, len(images.label_names))


def test_training_fits_the_labels(scenes):
    torch.manual_seed(0)
    images = LabelledImages(scenes / "annotations" / "instances_train.json", scenes / "train", 48)
    backbone = build_model(CONFIGS["tiny_narrow"]).backbone[0]
    _, early = train_backbone(backbone, images, 1, 6, 3e-3, 0.0, torch.device("cpu"))
    _, late = train_backbone(backbone, images, 60, 6, 3e-3, 0.0, torch.device("cpu"))
    assert late < 0.5 * early  # six images, memorised: the loss of the last steps falls well below the first's


def test_the_stem_computed_once_trains_as_the_stem_computed_every_step(scenes, monkeypatch):
    import copy

    import catr.backbone_training as backbone_training
    torch.manual_seed(0)
    backbone = build_model(CONFIGS["tiny_narrow"]).backbone[0]
    computed_once = []
    stem_outputs = backbone_training.stem_outputs
    monkeypatch.setattr(backbone_training, "stem_outputs", lambda *a: computed_once.append(1) or stem_outputs(*a))
    results = []
    # All the memory there is; room for the six images (41 kB) but not their stem outputs (221 kB) within a
    # quarter of it; none, so nothing is kept.
    for memory, kept, cached in ((None, True, True), (400_000, True, False), (0, False, False)):
        if memory is not None:
            monkeypatch.setattr(backbone_training, "available_memory", lambda: (memory, "a test's limit"))
        images = LabelledImages(scenes / "annotations" / "instances_train.json", scenes / "train", 48)
        assert (images.kept is not None) == kept
        trained = copy.deepcopy(backbone)
        torch.manual_seed(1)  # the head's initial weights
        computed_once.clear()
        head, loss = train_backbone(trained, images, 5, 4, 3e-3, 0.01, torch.device("cpu"), seed=1)
        assert bool(computed_once) == cached
        results.append((trained.state_dict(), head.weight.detach(), loss))
    first, first_head, first_loss = results[0]
    for weights, head, loss in results[1:]:
        assert loss == pytest.approx(first_loss, rel=1e-5) and torch.allclose(head, first_head, atol=1e-6)
        assert all(torch.allclose(weights[key], first[key], atol=1e-6) for key in first)
    assert torch.equal(first["body.conv1.weight"], backbone.state_dict()["body.conv1.weight"])  # the stem stays


def test_its_checkpoint_starts_a_captioner_whose_frozen_backbone_is_the_trained_one(scenes, tmp_path, run_cli):
    out = tmp_path / "backbone.pt"
    code, stdout, err = run_cli(pretrain_backbone.main, ["--data_dir", scenes, "--out", out, "--steps", "3", *FAST])
    assert code == 0, err
    assert "every label right in" in stdout and out.is_file()
    record = torch.load(out, weights_only=True)["config"]["pretrain_backbone"]
    assert record["steps"] == 3 and "circle" in record["labels"] and 0.0 <= record["val_exact"] <= 1.0
    pretrained = catr.load_model(weights=out)
    torch.manual_seed(0)
    fresh = build_model(CONFIGS["tiny_narrow"])
    assert not torch.equal(pretrained.backbone[0].body.layer1[0].conv1.weight, fresh.backbone[0].body.layer1[0].conv1.weight)
    assert not torch.equal(pretrained.backbone[0].body.bn1.running_var, fresh.backbone[0].body.bn1.running_var)
    run = tmp_path / "captioner"
    argv = ["--data_dir", scenes, "--output_dir", run, "--weights", out, "--freeze_backbone", "--cache_features",
            "--closed_vocabulary", "--epochs", "1", "--score_images", "0", *FAST]
    code, _, err = run_cli(train_captioner.main, argv)
    assert code == 0, err
    captioner = catr.load_model(weights=run / "best.pt")
    assert all(torch.equal(value, pretrained.backbone.state_dict()[key])
               for key, value in captioner.backbone.state_dict().items())


@pytest.mark.parametrize("extra, phrase", [
    (["--steps", "0"], "--steps must be at least 1"),
    (["--val_split", "test"], "no instances file for the split 'test'"),
    (["--image_size", "8"], "--image_size must be at least"),
])
def test_bad_flags_are_one_line(scenes, tmp_path, run_cli, extra, phrase):
    code, _, err = run_cli(pretrain_backbone.main, ["--data_dir", scenes, "--out", tmp_path / "b.pt", *FAST, *extra])
    assert code == 2 and len(err.strip().splitlines()) == 1 and phrase in err, err
    assert not (tmp_path / "b.pt").exists()


def test_an_existing_out_and_a_set_without_objects_are_one_line(scenes, tmp_path, run_cli):
    (tmp_path / "b.pt").write_text("earlier work")
    code, _, err = run_cli(pretrain_backbone.main, ["--data_dir", scenes, "--out", tmp_path / "b.pt", *FAST])
    assert code == 2 and "exists" in err and (tmp_path / "b.pt").read_text() == "earlier work"
    bare = tmp_path / "bare"
    (bare / "train").mkdir(parents=True)
    data = json.loads((scenes / "annotations" / "instances_train.json").read_text())
    for split in ("train", "val"):
        (bare / f"instances_{split}.json").write_text(json.dumps({**data, "annotations": []}))
    code, _, err = run_cli(pretrain_backbone.main, ["--data_dir", bare, "--out", tmp_path / "c.pt", *FAST])
    assert code == 2 and "annotates no object" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("content", [b"not an image at all", None])  # a text file; a truncated PNG
def test_an_unreadable_training_image_is_one_line(scenes, tmp_path, run_cli, content):
    import shutil
    data = tmp_path / "set"
    shutil.copytree(scenes, data)
    image = sorted((data / "train").iterdir())[0]
    image.write_bytes(content if content is not None else image.read_bytes()[:200])
    code, _, err = run_cli(pretrain_backbone.main, ["--data_dir", data, "--out", tmp_path / "b.pt", *FAST])
    assert code == 2 and len(err.strip().splitlines()) == 1 and f"cannot read image {image}" in err, err
    assert not (tmp_path / "b.pt").exists()


@pytest.mark.parametrize("extra, phrase", [
    (["--lr", "inf"], "--lr must be a finite number, not Infinity"),
    (["--weight_decay", "inf"], "--weight_decay must be a finite number"),
    (["--weight_decay", "nan"], "--weight_decay must be a finite number, not NaN"),
    (["--num_workers", "-1"], "--num_workers must be at least 0"),
])
def test_flags_break_the_shared_rules_before_any_image_is_read(scenes, tmp_path, run_cli, monkeypatch, extra, phrase):
    monkeypatch.setattr(pretrain_backbone, "LabelledImages", lambda *a, **k: pytest.fail("images were read"))
    code, _, err = run_cli(pretrain_backbone.main, ["--data_dir", scenes, "--out", tmp_path / "b.pt", *FAST, *extra])
    assert code == 2 and len(err.strip().splitlines()) == 1 and phrase in err, err


def test_a_diverging_training_stops_without_writing_its_checkpoint(scenes, tmp_path, run_cli):
    code, _, err = run_cli(pretrain_backbone.main, ["--data_dir", scenes, "--out", tmp_path / "b.pt", "--steps", "3",
                                                    "--lr", "1e6", *FAST])
    assert code == 2 and "the training loss became NaN or infinite" in err, err
    assert not (tmp_path / "b.pt").exists()


def test_a_checkpoint_with_non_finite_weights_is_refused_when_loaded(tmp_path):
    model = build_model(CONFIGS["tiny"])
    state = model.state_dict()
    state["transformer.decoder.norm.weight"][0] = float("nan")
    torch.save({"model": state}, tmp_path / "nan.pt")
    with pytest.raises(UserError, match="nan.pt holds NaN or infinite weights \\(1: transformer.decoder.norm.weight\\), "
                                        "as a training that diverged writes them") as err:
        catr.load_model(weights=tmp_path / "nan.pt", config="tiny")
    assert "does not match" not in str(err.value)  # the architecture is right: only its values are not


def test_a_file_made_meanwhile_under_out_is_kept_and_a_long_name_is_written(scenes, tmp_path, run_cli, monkeypatch):
    out = tmp_path / ("b" * 245 + ".pt")  # 248 bytes: it fits, and so must its temporary
    code, _, err = run_cli(pretrain_backbone.main, ["--data_dir", scenes, "--out", out, "--steps", "1", *FAST])
    assert code == 0 and out.is_file(), err
    out = tmp_path / "c.pt"
    original = pretrain_backbone.train_backbone

    def another_run_finishes_first(*args, **kwargs):
        out.write_text("the other run's backbone")
        return original(*args, **kwargs)
    monkeypatch.setattr(pretrain_backbone, "train_backbone", another_run_finishes_first)
    code, _, err = run_cli(pretrain_backbone.main, ["--data_dir", scenes, "--out", out, "--steps", "1", *FAST])
    assert code == 2 and "was created by another process" in err, err
    assert out.read_text() == "the other run's backbone"


def test_out_named_as_a_folder_is_refused(scenes, tmp_path, run_cli):
    code, _, err = run_cli(pretrain_backbone.main, ["--data_dir", scenes, "--out", f"{tmp_path}/dir/", *FAST])
    assert code == 2 and "is a folder; give a file name" in err and not (tmp_path / "dir").exists(), err
