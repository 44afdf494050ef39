"""p1_vis_pos_embed.py and p1_vis_attention.py on a micro checkpoint: files, numbers and one-line errors."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import p1_vis_attention
import p1_vis_pos_embed
from data.io import UserError
from data.pets import CLASS_NAMES
from models.attention import explicit_attention
from models.checkpoint import model_config, model_from_checkpoint
from models.figures.classifier import A4_TEXT_WIDTH, ATTENTION_DPI, POS_EMBED_DPI, save_colormap_png
from models.explain.maps import attention_rollout, position_embedding_similarity
from models.figures.plots import colormap, subplots
from models.vit import build_vit
from tests.support import ROOT, direct_inputs, huge_png, png_size

CONFIG = model_config("micro", 32)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = [folder / "cat.jpg", folder / "gray.png"]
    Image.fromarray(rng.integers(0, 255, (30, 45, 3), dtype=np.uint8)).save(paths[0])
    Image.fromarray(rng.integers(0, 255, (50, 40), dtype=np.uint8), mode="L").save(paths[1])
    return paths


def expected_width(dpi):
    return A4_TEXT_WIDTH * dpi


def block_scores(model, x):
    with explicit_attention(model), torch.no_grad():
        model(x)
        return [block.attn.scores for block in model.transformer.blocks]


# position embeddings ----------------------------------------------------------------------------

def test_pos_embed_from_checkpoint(ckpt, tmp_path):
    out, npy = tmp_path / "pos.png", tmp_path / "pos.npy"
    p1_vis_pos_embed.main(["--ckpt", str(ckpt), "--out", str(out), "--save_npy", str(npy)])
    width, height = png_size(out)
    assert 0.8 * expected_width(POS_EMBED_DPI) < width < 1.25 * expected_width(POS_EMBED_DPI)
    assert 0.6 * width < height < 1.1 * width
    model, _ = model_from_checkpoint(ckpt)
    sim = np.load(npy)
    assert sim.shape == (16, 16)  # 4 x 4 patches, the class token left out
    np.testing.assert_allclose(sim, position_embedding_similarity(
        model.positional_embedding.pos_embedding).numpy(), atol=1e-6)


def test_pos_embed_from_model_name_and_weights_file(ckpt, tmp_path):
    npy = tmp_path / "pos.npy"
    p1_vis_pos_embed.main(["--model", "micro", "--weights", str(ckpt), "--out", str(tmp_path / "a.png"),
                           "--save_npy", str(npy)])
    model, _ = model_from_checkpoint(ckpt)
    np.testing.assert_allclose(np.load(npy), position_embedding_similarity(
        model.positional_embedding.pos_embedding).numpy(), atol=1e-6)
    p1_vis_pos_embed.main(["--model", "micro", "--no_pretrained", "--out", str(tmp_path / "b.pdf")])
    assert (tmp_path / "b.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize("argv, message", [
    (["--model", "micro"], "no published weights"),
    (["--model", "micro", "--no_pretrained", "--weights", "x.pt"], "contradict"),
    (["--ckpt", "CKPT", "--image_size", "64"], "go with --model"),
    (["--model", "micro", "--no_pretrained", "--image_size", "0"], "positive multiple of micro's patch size 8"),
    (["--model", "micro", "--no_pretrained", "--image_size", "36"], "positive multiple of micro's patch size 8"),
    (["--ckpt", "STATE_DICT"], "not a checkpoint written by p1_train.py"),
])
def test_pos_embed_bad_arguments(ckpt, tmp_path, argv, message):
    torch.save(build_vit("micro", pretrained=False).state_dict(), tmp_path / "sd.pt")
    argv = [{"CKPT": str(ckpt), "STATE_DICT": str(tmp_path / "sd.pt")}.get(a, a) for a in argv]
    with pytest.raises(UserError, match=message):
        p1_vis_pos_embed.main(argv + ["--out", str(tmp_path / "x.png")])


def test_pos_embed_figure_format_checked(ckpt, tmp_path):
    with pytest.raises(UserError, match="must end in"):
        p1_vis_pos_embed.main(["--ckpt", str(ckpt), "--out", str(tmp_path / "x.txt")])


def test_colormap_png_keeps_the_colours_exact(tmp_path):
    """The 256-colour PNG holds exactly the colormap's colours and pure white, nothing shifted."""
    fig, ax = subplots(figsize=(6.4, 4.8))
    ax.imshow(np.linspace(-1, 1, 192)[None].repeat(10, 0), cmap=colormap("viridis", 192), vmin=-1, vmax=1,
              interpolation="nearest")
    ax.set_axis_off()
    save_colormap_png(fig, tmp_path / "c.png", dpi=100)
    with Image.open(tmp_path / "c.png") as image:
        assert image.mode == "P"
        rgb = np.asarray(image.convert("RGB")).reshape(-1, 3)
    colours = {tuple(c) for c in np.unique(rgb, axis=0)}
    assert (255, 255, 255) in colours
    viridis = colormap("viridis", 192)(np.arange(192), bytes=True)[:, :3]
    assert {tuple(c) for c in viridis} <= colours


# attention maps ---------------------------------------------------------------------------------

def test_last_writes_figures_and_the_packages_map(ckpt, images, tmp_path):
    p1_vis_attention.main(["--ckpt", str(ckpt), "--images", *map(str, images), "--out_dir", str(tmp_path),
                           "--save_npy"])
    for path in images:
        width, _ = png_size(tmp_path / f"{path.stem}_last.png")
        assert 0.8 * expected_width(ATTENTION_DPI) < width < 1.25 * expected_width(ATTENTION_DPI)
        model, x = direct_inputs(ckpt, path)
        scores = block_scores(model, x)[-1]
        expected = scores[0, :, 0, 1:].mean(0).reshape(4, 4).numpy()
        np.testing.assert_allclose(np.load(tmp_path / f"{path.stem}_last.npy"), expected, atol=1e-6)


def test_prediction_is_printed(ckpt, images, tmp_path, capsys):
    p1_vis_attention.main(["--ckpt", str(ckpt), "--images", str(images[0]), "--out_dir", str(tmp_path)])
    model, x = direct_inputs(ckpt, images[0])
    with torch.no_grad():
        prob, pred = model(x).softmax(-1)[0].max(0)
    assert f"{images[0]}: predicted {CLASS_NAMES[pred]} ({prob:.1%})" in capsys.readouterr().out


def test_layer_picks_the_block(ckpt, images, tmp_path):
    p1_vis_attention.main(["--ckpt", str(ckpt), "--images", str(images[0]), "--out_dir", str(tmp_path),
                           "--layer", "0", "--save_npy"])
    model, x = direct_inputs(ckpt, images[0])
    expected = block_scores(model, x)[0][0, :, 0, 1:].mean(0).reshape(4, 4).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "cat_last.npy"), expected, atol=1e-6)


@pytest.mark.parametrize("fusion, discard", [("mean", "0"), ("max", "0.25")])
def test_rollout_map_is_the_class_row_of_the_product(ckpt, images, tmp_path, fusion, discard):
    p1_vis_attention.main(["--ckpt", str(ckpt), "--images", str(images[1]), "--out_dir", str(tmp_path),
                           "--method", "rollout", "--head_fusion", fusion, "--discard_ratio", discard,
                           "--save_npy"])
    assert png_size(tmp_path / "gray_rollout.png")[0] > 0
    model, x = direct_inputs(ckpt, images[1])
    rollout = attention_rollout(block_scores(model, x), fusion, float(discard))
    np.testing.assert_allclose(rollout.sum(-1).numpy(), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "gray_rollout.npy"),
                               rollout[0, 0, 1:].reshape(4, 4).numpy(), atol=1e-6)


def test_several_methods_draw_one_figure_each_in_one_call(ckpt, images, tmp_path):
    p1_vis_attention.main(["--ckpt", str(ckpt), "--images", str(images[0]), "--out_dir", str(tmp_path),
                           "--method", "rollout", "heads", "rollout", "--save_npy"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat_heads.npy", "cat_heads.png", "cat_rollout.npy",
                                                          "cat_rollout.png"]
    one = tmp_path / "one"
    p1_vis_attention.main(["--ckpt", str(ckpt), "--images", str(images[0]), "--out_dir", str(one),
                           "--method", "rollout", "--save_npy"])
    np.testing.assert_array_equal(np.load(one / "cat_rollout.npy"), np.load(tmp_path / "cat_rollout.npy"))


def test_heads_give_one_map_per_head(ckpt, images, tmp_path):
    p1_vis_attention.main(["--ckpt", str(ckpt), "--images", str(images[0]), "--out_dir", str(tmp_path),
                           "--method", "heads", "--layer", "-2", "--save_npy"])
    maps = np.load(tmp_path / "cat_heads.npy")
    assert maps.shape == (2, 4, 4)  # micro has 2 heads
    model, x = direct_inputs(ckpt, images[0])
    scores = block_scores(model, x)[0]  # layer -2 of 2 is layer 0
    np.testing.assert_allclose(maps, scores[0, :, 0, 1:].reshape(2, 4, 4).numpy(), atol=1e-6)
    width, height = png_size(tmp_path / "cat_heads.png")
    assert 0.8 * expected_width(ATTENTION_DPI) < width < 1.25 * expected_width(ATTENTION_DPI)


def test_default_images_come_from_data_dir(ckpt, images, tmp_path):
    val = tmp_path / "data" / "val"
    val.mkdir(parents=True)
    for name in p1_vis_attention.REPORT_IMAGES:
        Image.open(images[0]).save(tmp_path / "data" / name)
    p1_vis_attention.main(["--ckpt", str(ckpt), "--data_dir", str(tmp_path / "data"),
                           "--out_dir", str(tmp_path / "out")])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == \
        ["26_5064_last.png", "29_4718_last.png", "31_4838_last.png"]


def test_default_images_missing_names_data_dir(ckpt, tmp_path):
    with pytest.raises(UserError, match="pass --data_dir or --images"):
        p1_vis_attention.main(["--ckpt", str(ckpt), "--data_dir", str(tmp_path), "--out_dir", str(tmp_path)])


def test_rollout_options_with_another_method_warn(ckpt, images, tmp_path, capsys):
    p1_vis_attention.main(["--ckpt", str(ckpt), "--images", str(images[0]), "--out_dir", str(tmp_path),
                           "--head_fusion", "max"])
    assert "warning: --head_fusion does not apply to --method last; ignored" in capsys.readouterr().err


def write_text(path, text="not an image"):
    path.write_text(text)
    return path


@pytest.mark.parametrize("case, message", [
    ("missing image", "image not found"),
    ("text as image", "cannot read image"),
    ("decompression bomb", "100,000,000 pixels"),
    ("state dict", "not a checkpoint written by p1_train.py"),
    ("text as checkpoint", "not a readable PyTorch file"),
    ("layer too high", r"--layer 2 is out of range: the model has 2 layers \(0\.\.1, or -2\.\.-1\)"),
    ("layer too low", r"--layer -3 is out of range"),
    ("discard 1", "discard_ratio"),
    ("same stem", "are both named 'cat': their figures would overwrite each other"),
])
def test_bad_input_is_one_clear_error(ckpt, images, tmp_path, case, message):
    argv = {"--ckpt": str(ckpt), "--images": [str(images[0])], "--out_dir": str(tmp_path / "out")}
    extra = []
    if case == "missing image":
        argv["--images"] = [str(tmp_path / "nowhere.jpg")]
    elif case == "text as image":
        argv["--images"] = [str(write_text(tmp_path / "fake.jpg"))]
    elif case == "decompression bomb":
        argv["--images"] = [str(huge_png(tmp_path / "bomb.png"))]
    elif case == "state dict":
        torch.save(build_vit("micro", pretrained=False).state_dict(), tmp_path / "sd.pt")
        argv["--ckpt"] = str(tmp_path / "sd.pt")
    elif case == "text as checkpoint":
        argv["--ckpt"] = str(write_text(tmp_path / "notes.pt"))
    elif case == "layer too high":
        extra = ["--layer", "2"]
    elif case == "layer too low":
        extra = ["--layer", "-3"]
    elif case == "discard 1":
        extra = ["--method", "rollout", "--discard_ratio", "1"]
    elif case == "same stem":
        other = tmp_path / "b" / "cat.png"
        other.parent.mkdir()
        Image.open(images[0]).save(other)
        argv["--images"].append(str(other))
    flat = [a for k, v in argv.items() for a in ([k, *v] if isinstance(v, list) else [k, v])]
    with pytest.raises(UserError, match=message):
        p1_vis_attention.main(flat + extra)
    assert not (tmp_path / "out").exists()  # nothing half-done left behind


def test_scripts_report_errors_as_one_line(ckpt, tmp_path, run_cli):
    """`error: ...` on one line, exit status 2, no traceback: p1_vis_attention through run_main in a
    real process (nothing else, a warning of an import say, reaches stderr), p1_vis_pos_embed the same
    way in-process."""
    done = subprocess.run([sys.executable, "p1_vis_attention.py", "--ckpt", str(ckpt), "--images", str(ckpt),
                           "--out_dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    code, _, err = run_cli(p1_vis_pos_embed.main, ["--ckpt", tmp_path / "none.pt", "--out", tmp_path / "x.png"])
    for status, stderr in ((done.returncode, done.stderr), (code, err)):
        assert status == 2
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), stderr


def test_a_figure_never_replaces_an_input_image(ckpt, tmp_path, monkeypatch):
    """With --out_dir the images' folder, a.png's figure a_last.png would replace the input
    image a_last.png; refused before the model loads."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("a.png", "a_last.png"):
        Image.new("RGB", (32, 32), (90, 120, 200)).save(folder / name)
    before = (folder / "a_last.png").read_bytes()
    monkeypatch.setattr(p1_vis_attention, "model_from_checkpoint", None)  # refused before the model loads
    with pytest.raises(UserError, match="holds the input"):
        p1_vis_attention.main(["--ckpt", str(ckpt), "--images", str(folder / "a.png"), str(folder / "a_last.png"),
                               "--out_dir", str(folder)])
    assert (folder / "a_last.png").read_bytes() == before


def test_two_outputs_naming_one_file_are_refused_before_any_work(ckpt, tmp_path, monkeypatch):
    monkeypatch.setattr(p1_vis_pos_embed, "load_model", None)  # refused before the model loads
    with pytest.raises(UserError, match="--out and --save_npy name the same file"):
        p1_vis_pos_embed.main(["--ckpt", str(ckpt), "--out", str(tmp_path / "x.png"),
                               "--save_npy", str(tmp_path / "x.png")])
    assert not (tmp_path / "x.png").exists()


def test_figures_are_never_written_among_the_images(ckpt, tmp_path, monkeypatch):
    val = tmp_path / "data" / "val"
    val.mkdir(parents=True)
    Image.new("RGB", (32, 32), (90, 120, 200)).save(val / "0_1480.png")
    monkeypatch.setattr(p1_vis_attention, "model_from_checkpoint", None)
    with pytest.raises(UserError, match="holds the input"):
        p1_vis_attention.main(["--ckpt", str(ckpt), "--images", str(val / "0_1480.png"), "--out_dir", str(val)])
    assert [path.name for path in val.iterdir()] == ["0_1480.png"]


def test_a_figure_name_too_long_for_the_file_system_is_refused_before_any_work(ckpt, tmp_path, monkeypatch):
    image = tmp_path / ("n" * 250 + ".png")  # the image's name fits; <stem>_last.png does not
    Image.new("RGB", (32, 32), (90, 120, 200)).save(image)
    monkeypatch.setattr(p1_vis_attention, "model_from_checkpoint", None)
    with pytest.raises(UserError, match="whose figures are named after the images: the name n+\.\.\. is 259 bytes long"):
        p1_vis_attention.main(["--ckpt", str(ckpt), "--images", str(image), "--out_dir", str(tmp_path / "out")])
