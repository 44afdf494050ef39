"""scripts/eval_explanations.py, p1_vis_attention.py --method relevancy and scripts/dev/bench_explanations.py
on a micro checkpoint: the report, its files, the relevancy figures, the benchmark line, one-line errors."""
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import p1_vis_attention
from data.synthetic import make_synthetic_split
from models.explain.attnlrp import attnlrp_maps
from models.explain.maps import legrad_maps, relevancy_maps
from tests.support import direct_inputs, png_size

import bench_explanations
import bench_measures
import eval_explanations
from models.checkpoint import model_config, save_checkpoint
from models.vit import random_vit


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_synthetic_split(tmp_path_factory.mktemp("masked"), seed=2, size=32, train_per_class=0,
                                val_per_class=1, masks=True)


def last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def test_report_with_masks_json_and_figure(ckpt, data, tmp_path, run_cli):
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    code, out, err = run_cli(eval_explanations.main, [
        "--ckpt", ckpt, "--img_dir", data / "val", "--masks_dir", data / "val_masks", "--limit", "5",
        "--batch_size", "2", "--out_json", out_json, "--out_png", out_png, "--no_progress"])
    assert code == 0, err
    record = last_json(out)
    assert record == json.loads(out_json.read_text())
    assert record["images"] == 5 and record["located_images"] == 5
    assert list(record["methods"]) == ["random", "last", "rollout", "relevancy", "attnlrp", "legrad"]
    measures = ("positive_auc", "negative_auc", "deletion_auc", "insertion_auc", "pointing_game", "energy", "iou")
    for method, scores in record["methods"].items():
        for measure in measures:
            low, high = scores[f"{measure}_ci95"]
            assert 0 <= low <= scores[measure] <= high <= 100
            if method != "random":
                verdict = scores["against_random"][measure]
                assert verdict["verdict"] in ("beats", "loses", "no clear difference")
                assert verdict["difference_ci95"][0] <= verdict["difference"] <= verdict["difference_ci95"][1]
        assert scores["positive_curve"][0] == 1.0 and len(scores["negative_curve"]) == 10
        assert len(scores["deletion_curve"]) == len(scores["insertion_curve"]) == 11
    assert list(record["true_class"]) == ["relevancy", "attnlrp", "legrad"]  # the synthetic names carry labels
    assert record["accuracy_ci95"][0] <= record["accuracy"] <= record["accuracy_ci95"][1]
    assert record["random_seeds"] == [0, 1, 2, 3, 4] and record["bootstrap"]["resamples"] == 2000
    assert len(record["differences"]) == 10 and "last - relevancy" in record["differences"]  # 5 methods, paired
    sanity = record["sanity"]["last"]
    assert sanity["stages"] == ["head", "block 1", "block 0"] and len(sanity["correlation_ci95"]) == 3
    assert sanity["verdict_stage"] == "block 1" and sanity["verdict"] in ("passes", "fails", "unclear")
    assert record["sanity"]["random"]["correlation"] == [1.0, 1.0, 1.0]  # the same maps whatever the weights
    assert "| relevancy |" in out and "(the baseline)" in out and "sanity check" in out
    assert png_size(out_png)[0] > 0


def test_batches_do_not_change_the_scores(ckpt, data, run_cli):
    runs = [run_cli(eval_explanations.main, ["--ckpt", ckpt, "--img_dir", data / "val", "--limit", "3",
                                             "--batch_size", b, "--methods", "random", "relevancy",
                                             "--sanity_images", "0", "--resamples", "200", "--no_progress"])
            for b in (1, 3)]
    one, six = (last_json(out)["methods"] for _, out, _ in runs)
    assert one == six


def test_missing_masks_leave_images_out_of_localisation_only(ckpt, data, tmp_path, run_cli):
    masks = tmp_path / "masks"
    shutil.copytree(data / "val_masks", masks)
    first = sorted(masks.iterdir())[0]
    first.unlink()
    code, out, err = run_cli(eval_explanations.main, [
        "--ckpt", ckpt, "--img_dir", data / "val", "--masks_dir", masks, "--limit", "4", "--methods", "last",
        "--no_progress"])
    assert code == 0
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "no mask" in warnings[0] and first.name in warnings[0]
    record = last_json(out)
    assert record["images"] == 4 and record["located_images"] == 3


def test_a_corrupt_image_stops_the_report_or_is_skipped_with_the_masks_kept_in_line(ckpt, data, tmp_path,
                                                                                     run_cli):
    images = tmp_path / "val"
    shutil.copytree(data / "val", images)
    names = sorted(p.name for p in images.iterdir())[:4]
    for name in sorted(p.name for p in images.iterdir())[4:]:
        (images / name).unlink()
    (images / names[0]).write_bytes(b"not an image")  # the first: every later index would shift
    argv = ["--ckpt", ckpt, "--img_dir", images, "--masks_dir", data / "val_masks", "--methods", "last",
            "--no_progress"]
    code, _, err = run_cli(eval_explanations.main, argv)
    assert code == 2 and err.startswith("error: cannot read image") and "--skip_bad_images" in err
    code, out, err = run_cli(eval_explanations.main, argv + ["--skip_bad_images"])
    assert code == 0, err
    skipped = last_json(out)
    keep = tmp_path / "kept"
    keep.mkdir()
    for name in names[1:]:
        shutil.copy(images / name, keep / name)
    code, out, _ = run_cli(eval_explanations.main, ["--ckpt", ckpt, "--img_dir", keep, "--masks_dir",
                                                    data / "val_masks", "--methods", "last", "--no_progress"])
    assert skipped["images"] == 3 and skipped["methods"] == last_json(out)["methods"]


@pytest.mark.parametrize("case, message", [
    ("unknown method", "unknown method 'gradcam'"),
    ("empty folder", "no .jpg/.jpeg/.png images"),
    ("no mask at all", "holds no <stem>.png mask"),
    ("figure suffix", "a figure must end in one of"),
    ("limit 0", "--limit must be at least 1"),
    ("one sanity image", "--sanity_images needs at least 2 images"),
    ("checkpoint twice", "a checkpoint is listed twice"),
])
def test_bad_input_is_one_line_and_exit_2(ckpt, data, tmp_path, run_cli, case, message):
    argv = ["--ckpt", ckpt, "--img_dir", data / "val", "--no_progress"]
    if case == "unknown method":
        argv += ["--methods", "last", "gradcam"]
    elif case == "empty folder":
        (tmp_path / "empty").mkdir()
        argv[3] = tmp_path / "empty"
    elif case == "no mask at all":
        argv += ["--masks_dir", tmp_path]
    elif case == "figure suffix":
        argv += ["--out_png", tmp_path / "curves.txt"]
    elif case == "limit 0":
        argv += ["--limit", "0"]
    elif case == "one sanity image":
        argv += ["--sanity_images", "1"]
    elif case == "checkpoint twice":
        argv[2:2] = [ckpt]
    code, out, err = run_cli(eval_explanations.main, argv)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [err.strip()] and err.startswith("error: ") and message in err


def test_several_checkpoints_on_the_same_images(ckpt, data, tmp_path, run_cli):
    other = tmp_path / "other.pt"
    torch.manual_seed(1)
    save_checkpoint(other, random_vit("micro"), model_config("micro", 32), epoch=1)
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    code, out, err = run_cli(eval_explanations.main, [
        "--ckpt", ckpt, other, "--img_dir", data / "val", "--masks_dir", data / "val_masks", "--limit", "3",
        "--methods", "random", "last", "--sanity_images", "0", "--resamples", "200", "--out_json", out_json,
        "--out_png", out_png, "--no_progress"])
    assert code == 0, err
    record = last_json(out)
    assert [c["checkpoint"] for c in record["checkpoints"]] == [str(ckpt), str(other)]
    assert record["checkpoints"][0]["methods"] == record["methods"] and "sanity" not in record["checkpoints"][0]
    # the same random maps: localisation, which does not depend on the model, is the same for both
    assert record["checkpoints"][1]["methods"]["random"]["energy"] == record["methods"]["random"]["energy"]
    assert set(record["rank_correlation"]) == {"random", "last"}
    assert set(record["rank_correlation"]["last"]["energy"]) == {"spearman", "spearman_ci95"}
    assert record["most_accurate"] in (str(ckpt), str(other))
    assert sum("against_most_accurate" in c and bool(c["against_most_accurate"]) for c in record["checkpoints"]) == 1
    assert "rank correlation" in out and png_size(out_png)[0] > 0


def test_road_removal_is_recorded(ckpt, data, run_cli):
    code, out, err = run_cli(eval_explanations.main, [
        "--ckpt", ckpt, "--img_dir", data / "val", "--limit", "2", "--methods", "last", "--removal", "road",
        "--sanity_images", "0", "--resamples", "100", "--no_progress"])
    assert code == 0, err
    record = last_json(out)
    assert record["removal"] == "road" and record["fill"] is None
    assert 0 <= record["methods"]["last"]["deletion_auc"] <= 100
    assert "imputed (ROAD)" in out


# relevancy figures of p1_vis_attention.py ------------------------------------------------------

@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "cat.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(path)
    return path


def test_relevancy_figure_and_map_for_a_chosen_class(ckpt, image, tmp_path, run_cli):
    code, out, err = run_cli(p1_vis_attention.main, [
        "--ckpt", ckpt, "--images", image, "--out_dir", tmp_path, "--method", "relevancy",
        "--target_class", "3", "--save_npy"])
    assert code == 0, err
    model, x = direct_inputs(ckpt, image)
    _, _, expected = relevancy_maps(model, x, 3)
    np.testing.assert_allclose(np.load(tmp_path / "cat_relevancy_class3.npy"), expected[0].numpy(), rtol=1e-5)
    assert png_size(tmp_path / "cat_relevancy_class3.png")[0] > 0
    code, _, _ = run_cli(p1_vis_attention.main, ["--ckpt", ckpt, "--images", image, "--out_dir", tmp_path,
                                                 "--method", "relevancy", "--save_npy"])
    _, predicted, default = relevancy_maps(model, x)
    np.testing.assert_allclose(np.load(tmp_path / "cat_relevancy.npy"), default[0].numpy(), rtol=1e-5)
    assert code == 0 and predicted.item() != 3  # the image's predicted class is another one
    assert not np.allclose(default[0].numpy(), expected[0].numpy())


@pytest.mark.parametrize("method, maps", [("attnlrp", attnlrp_maps), ("legrad", legrad_maps)])
def test_attnlrp_and_legrad_figures_for_a_chosen_class(ckpt, image, tmp_path, run_cli, method, maps):
    code, out, err = run_cli(p1_vis_attention.main, [
        "--ckpt", ckpt, "--images", image, "--out_dir", tmp_path, "--method", method, "--target_class", "3",
        "--save_npy"])
    assert code == 0 and err == "", err
    model, x = direct_inputs(ckpt, image)
    np.testing.assert_allclose(np.load(tmp_path / f"cat_{method}_class3.npy"), maps(model, x, 3)[2][0].numpy(),
                               rtol=1e-5, atol=1e-6)
    assert png_size(tmp_path / f"cat_{method}_class3.png")[0] > 0


@pytest.mark.parametrize("target", ["37", "-1"])
def test_target_class_out_of_range(ckpt, image, tmp_path, run_cli, target):
    code, out, err = run_cli(p1_vis_attention.main, [
        "--ckpt", ckpt, "--images", image, "--out_dir", tmp_path / "out", "--method", "relevancy",
        "--target_class", target])
    assert code == 2 and err.strip() == (f"error: --target_class {target} is out of range: the model has "
                                         "37 classes, use 0..36")
    assert not (tmp_path / "out").exists()


def test_target_class_with_another_method_warns(ckpt, image, tmp_path, run_cli):
    code, _, err = run_cli(p1_vis_attention.main, ["--ckpt", ckpt, "--images", image, "--out_dir", tmp_path,
                                                   "--target_class", "2"])
    assert code == 0 and "warning: --target_class does not apply to --method last; ignored" in err


# the benchmark --------------------------------------------------------------------------------

def test_benchmark_runs_tiny_and_ends_with_a_json_line(run_cli):
    code, out, err = run_cli(bench_explanations.main, ["--model", "micro", "--batch_size", "2", "--steps", "2",
                                                       "--warmup", "1"])
    assert code == 0, err
    record = last_json(out)
    assert record["benchmark"] == "explanations" and record["model"] == "micro" and record["batch_size"] == 2
    assert record["methods"] == ["relevancy", "attnlrp", "legrad"]
    for method in record["methods"]:
        assert len(record[f"{method}_s"]) == len(record["train_step_s"]) == len(record["input_gradient_s"]) == 2
        assert record[f"{method}_over_train_step"] == pytest.approx(
            record[f"{method}_s_median"] / record["train_step_s_median"], rel=1e-2)
        assert f"{method} / training step" in out


def test_measures_benchmark_runs_tiny_and_ends_with_a_json_line(run_cli):
    code, out, err = run_cli(bench_measures.main, ["--model", "micro", "--batch_size", "2", "--steps", "1",
                                                   "--warmup", "0"])
    assert code == 0, err
    record = last_json(out)
    assert record["benchmark"] == "measures" and record["sanity_stages"] == 3
    assert record["perturbation_road_s_per_image"] > 0 and record["sanity_s_per_image"] > 0
    assert "ROAD / grey fill" in out


def test_benchmark_bad_input(run_cli):
    code, _, err = run_cli(bench_explanations.main, ["--model", "micro", "--steps", "0"])
    assert code == 2 and err.strip() == "error: --steps must be at least 1, not 0"


@pytest.mark.parametrize("where, message", [
    ("folder", "is a folder; give a file name"),
    ("file/r.json", "a file stands where its folder should be"),
    ("image", "would overwrite the input"),
])
def test_out_json_checked_before_any_work(ckpt, data, tmp_path, run_cli, monkeypatch, where, message):
    """--out_json into a folder, under a file, or onto an input is refused before the model loads."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    target = sorted((data / "val").iterdir())[0] if where == "image" else tmp_path / where
    monkeypatch.setattr(eval_explanations, "model_from_checkpoint", lambda *a: pytest.fail("the model was loaded"))
    code, _, err = run_cli(eval_explanations.main, ["--ckpt", ckpt, "--img_dir", data / "val",
                                                    "--out_json", target, "--no_progress"])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_grey_alpha_masks_are_not_all_object(ckpt, data, tmp_path, run_cli):
    """LA masks (grey + opaque alpha) gave a pointing game of 100 for every method, `random` included."""
    la_masks = tmp_path / "la"
    la_masks.mkdir()
    for path in sorted((data / "val_masks").iterdir()):
        with Image.open(path) as mask:
            grey = mask.convert("L")
            Image.merge("LA", (grey, Image.new("L", grey.size, 255))).save(la_masks / path.name)
    argv = ["--ckpt", ckpt, "--img_dir", data / "val", "--limit", "6", "--methods", "random", "--no_progress",
            "--masks_dir", la_masks]
    random_scores = last_json(run_cli(eval_explanations.main, argv)[1])["methods"]["random"]
    assert random_scores["pointing_game"] < 100


@pytest.mark.parametrize("flag, value, message", [
    ("--seed", "99999999999999999999", "--seed must be in 0..4294967295, not 99999999999999999999"),
    ("--seed", "-1", "--seed must be in 0..4294967295, not -1"),
    ("--fill", "nan", "--fill must be a finite number, not nan"),
    ("--fill", "-inf", "--fill must be a finite number, not -inf"),
])
def test_seed_out_of_range_and_fill_not_finite_are_one_line(ckpt, data, run_cli, monkeypatch, flag,
                                                                    value, message):
    """A huge --seed overflowed torch.manual_seed (traceback); --fill nan or inf made flat curves."""
    monkeypatch.setattr(eval_explanations, "model_from_checkpoint", None)  # refused before the model loads
    argv = ["--ckpt", ckpt, "--img_dir", data / "val", f"{flag}={value}", "--no_progress"]
    code, _, err = run_cli(eval_explanations.main, argv)
    assert code == 2 and err.strip() == f"error: {message}"
