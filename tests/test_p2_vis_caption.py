"""p2_vis_caption.py: figures, .npy maps and one-line errors, with the tiny random-weight captioner."""
import os
import subprocess
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import catr
import p2_vis_caption
from models.figures.caption import caption_figure
from data.images import open_rgb
from data.io import UserError
from tests.support import huge_png, png_size
from tests.support import ROOT

TINY = ["--random_weights", "--config", "tiny"]


@pytest.fixture(scope="module")
def img_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)).save(folder / "wide.jpg")
    Image.fromarray(rng.integers(0, 256, (90, 48, 3), dtype=np.uint8)).save(folder / "tall.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


@pytest.mark.parametrize("size", [(299, 199), (199, 299)])
def test_figure_has_start_then_one_panel_per_token(size):
    image = Image.new("RGB", size)
    labels = ["a", "dog", "run", "##s", ".", "<end>"]
    maps = np.random.default_rng(0).random((6, 13, 19)).astype(np.float32)
    fig = caption_figure(image, "A dog runs.", labels, maps)
    axes = _image_axes(fig)
    assert len(fig.axes) == len(axes) == 7
    assert [ax.get_title() for ax in axes] == ["<start>"] + labels
    assert fig._suptitle.get_text() == "A dog runs."


def test_figure_with_all_heads_has_a_row_per_head():
    maps = np.random.default_rng(0).random((3, 8, 13, 19)).astype(np.float32)
    fig = caption_figure(Image.new("RGB", (299, 199)), "A dog", ["a", "dog", "<end>"], maps)
    axes = _image_axes(fig)
    assert len(axes) == 8 * 4
    assert [ax.get_title() for ax in axes[:4]] == ["<start>", "a", "dog", "<end>"]
    assert [axes[4 * head].get_ylabel() for head in range(8)] == [f"head {head}" for head in range(8)]


def test_folder_gives_one_png_per_image_and_skips_others(img_dir, tmp_path, capsys):
    p2_vis_caption.main(["--img_dir", str(img_dir), "--out_dir", str(tmp_path), "--max_steps", "3",
                         "--save_npy", *TINY])
    captured = capsys.readouterr()
    assert "notes.txt" in captured.err and "warning:" in captured.err
    assert "noise" in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tall.npy", "tall.png", "wide.npy", "wide.png"]
    with Image.open(tmp_path / "wide.png") as figure:
        assert figure.format == "PNG" and figure.width > 500
    # 299 x 199 after resizing -> a 13 x 19 feature grid; 3 steps, no [SEP] within them here
    assert np.load(tmp_path / "wide.npy").shape == (3, 13, 19)
    assert np.load(tmp_path / "tall.npy").shape == (3, 19, 10)
    assert "wide.jpg: " in captured.out


def test_all_heads_npy_and_negative_layer(img_dir, tmp_path):
    p2_vis_caption.main(["--images", str(img_dir / "wide.jpg"), "--out_dir", str(tmp_path), "--max_steps", "2",
                         "--heads", "all", "--layer", "-1", "--save_npy", *TINY])
    assert np.load(tmp_path / "wide.npy").shape == (2, 4, 13, 19)


def test_beam_search_in_batches_draws_the_chosen_beam(img_dir, tmp_path):
    p2_vis_caption.main(["--img_dir", str(img_dir), "--out_dir", str(tmp_path), "--max_steps", "4", "--beam", "3",
                         "--length_penalty", "0.5", "--batch_size", "2", "--save_npy", *TINY])
    torch.manual_seed(0)  # the random weights the script builds
    model = catr.build_model("tiny").eval()
    for name in ("tall.png", "wide.jpg"):
        image = catr.preprocess(catr.resize_longer_side(open_rgb(img_dir / name)))
        decoded = catr.generate(model, [image], beam_size=3, max_steps=4, length_penalty=0.5)[0]
        expected = decoded.attention[:, p2_vis_caption.DEFAULT_LAYER].mean(dim=1).numpy()
        assert np.allclose(np.load(tmp_path / f"{Path(name).stem}.npy"), expected, atol=1e-6)


def test_the_page_asks_the_search_for_every_beam_and_the_figures_do_not(img_dir, tmp_path, monkeypatch):
    asked = []
    search = p2_vis_caption.caption_files
    monkeypatch.setattr(p2_vis_caption, "caption_files",
                        lambda *args, **kwargs: asked.append(kwargs.get("all_beams")) or search(*args, **kwargs))
    flags = ["--img_dir", str(img_dir), "--max_steps", "2", "--beam", "2", *TINY]
    p2_vis_caption.main(flags + ["--out_dir", str(tmp_path / "figures")])
    p2_vis_caption.main(flags + ["--html", str(tmp_path / "page.html")])
    assert asked == [False, True]


@pytest.mark.parametrize("argv, message", [
    (["--img_dir", "{tmp}/missing"], "folder not found"),
    (["--img_dir", "{tmp}"], "no .jpg/.jpeg/.png images"),
    (["--img_dir", "{images}", "--layer", "3", *TINY], "--layer 3 is out of range"),
    (["--img_dir", "{images}", "--max_steps", "0", *TINY], "--max_steps must be in 1..127"),
    (["--img_dir", "{images}", "--beam", "0", *TINY], "--beam must be at least 1, not 0"),
    (["--img_dir", "{images}", "--batch_size", "0", *TINY], "--batch_size must be at least 1, not 0"),
    (["--img_dir", "{images}", "--beam", "2", "--length_penalty", "nan", *TINY],
     "--length_penalty must be a finite number, not NaN"),
    (["--img_dir", "{images}", "--beam", "2", "--length_penalty=-inf", *TINY], "--length_penalty must be a finite"),
    (["--img_dir", "{images}", "--beam", "2", "--length_penalty", "250", *TINY],
     r"--length_penalty must be in \[-10, 10\), not 250"),
    (["--img_dir", "{images}", "--weights", "{images}/notes.txt", "--config", "tiny"], "is not a CATR checkpoint"),
    (["--images", "{images}/wide.jpg", "{tmp}/wide.png", *TINY], "are both named 'wide'"),
    (["--images", "{images}/notes.txt", *TINY], "cannot read image"),
])
def test_bad_input_is_one_line(img_dir, tmp_path, argv, message):
    argv = [arg.format(tmp=tmp_path, images=img_dir) for arg in argv] + ["--out_dir", str(tmp_path / "out")]
    with pytest.raises(UserError, match=message) as err:
        p2_vis_caption.main(argv)
    assert "\n" not in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu(img_dir, tmp_path):
    with pytest.raises(UserError, match="no CUDA GPU"):
        p2_vis_caption.main(["--img_dir", str(img_dir), "--out_dir", str(tmp_path), "--device", "cuda", *TINY])


def test_failed_download_names_url_and_weights_flag(img_dir, tmp_path, monkeypatch):
    def offline(url, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(UserError) as err:
        p2_vis_caption.main(["--img_dir", str(img_dir), "--out_dir", str(tmp_path), "--config", "tiny"])
    assert catr.WEIGHT_URLS["v2"] in str(err.value) and "--weights FILE" in str(err.value)


def test_unknown_version_exits_2_with_one_line(img_dir, tmp_path, run_cli):
    code, _, err = run_cli(p2_vis_caption.main, ["--img_dir", img_dir, "--out_dir", tmp_path, "--version", "v4"])
    assert code == 2
    errors = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert errors == ["error: unknown CATR version 'v4'; choose one of v1, v2, v3"]


def test_grader_script_wants_two_arguments():
    result = subprocess.run(["bash", str(ROOT / "scripts" / "p2_vis_caption.sh"), "only_one"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "usage: bash scripts/p2_vis_caption.sh IMG_DIR OUT_DIR"


def test_a_decompression_bomb_is_skipped_with_a_warning(img_dir, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "wide.jpg").write_bytes((img_dir / "wide.jpg").read_bytes())
    huge_png(folder / "huge.png")
    with pytest.raises(UserError, match="1 of 2 images could not be read"):
        p2_vis_caption.main(["--img_dir", str(folder), "--out_dir", str(tmp_path / "out"), *TINY,
                             "--max_steps", "2", "--device", "cpu"])
    assert "huge.png" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["wide.png"]


def test_grader_script_passes_p2_weights_on_through_a_link(img_dir, tmp_path, monkeypatch):
    """Called by a link, folder names starting with '-': the script hands the repository's
    p2_vis_caption.py both folders and P2_WEIGHTS' file (seen through a stand-in Python that prints
    what it is given), and those arguments reach the weights' file."""
    (tmp_path / "-imgs").symlink_to(img_dir, target_is_directory=True)
    (tmp_path / "caption.sh").symlink_to(ROOT / "scripts" / "p2_vis_caption.sh")
    stand_in = tmp_path / "python"
    stand_in.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    stand_in.chmod(0o755)
    env = {**os.environ, "P2_WEIGHTS": str(img_dir / "notes.txt"), "PYTHON": str(stand_in)}
    result = subprocess.run(["bash", "caption.sh", "-imgs", "-out"], cwd=tmp_path, capture_output=True,
                            text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(ROOT / "p2_vis_caption.py"), "--img_dir=-imgs", "--out_dir=-out",
                                          f"--weights={img_dir / 'notes.txt'}"]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=f"{img_dir / 'notes.txt'} is not a CATR checkpoint"):
        p2_vis_caption.main(result.stdout.splitlines()[1:])


def test_out_dir_that_holds_the_inputs_never_overwrites_them(tmp_path, monkeypatch):
    """--out_dir the images' folder would replace a.png by its figure: refused, one line, exit 2."""
    Image.new("RGB", (40, 30), "red").save(tmp_path / "a.png")
    before = (tmp_path / "a.png").read_bytes()
    monkeypatch.setattr(p2_vis_caption, "load_captioner", lambda *a: pytest.fail("the model was loaded"))
    with pytest.raises(UserError, match="holds the input"):
        p2_vis_caption.main(["--img_dir", str(tmp_path), "--out_dir", str(tmp_path), *TINY])
    assert (tmp_path / "a.png").read_bytes() == before


def test_out_dir_that_is_a_file_is_refused_before_the_model_loads(img_dir, tmp_path, monkeypatch):
    """An --out_dir that is a file is found before any captioning, not after the first batch."""
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(p2_vis_caption, "load_captioner", lambda *a: pytest.fail("the model was loaded"))
    with pytest.raises(UserError, match="is a file, not a folder"):
        p2_vis_caption.main(["--img_dir", str(img_dir), "--out_dir", str(tmp_path / "file"), *TINY])


def test_a_thin_image_keeps_a_pixel_and_its_figure_stays_small(tmp_path):
    """A 4000x10 image became 299x0 (captioning crashed); a 50x4000 one made a figure of
    1817x36032 px. Each side keeps at least 1 px, and the panel aspect is capped."""
    assert catr.resize_longer_side(Image.new("RGB", (4000, 10))).size == (299, 1)
    assert catr.resize_longer_side(Image.new("RGB", (10, 4000))).size == (1, 299)
    Image.new("RGB", (50, 4000), "white").save(tmp_path / "strip.png")
    Image.new("RGB", (4000, 10), "white").save(tmp_path / "line.png")
    out = tmp_path / "out"
    p2_vis_caption.main(["--img_dir", str(tmp_path), "--out_dir", str(out), "--max_steps", "2", *TINY])
    for name in ("strip.png", "line.png"):
        width, height = png_size(out / name)
        assert max(width, height) < 4000, (name, width, height)


def test_beam_wider_than_the_vocabulary_is_refused(img_dir, tmp_path, monkeypatch):
    """--beam has an upper bound, the vocabulary, checked before the search runs."""
    monkeypatch.setattr(p2_vis_caption, "caption_files", lambda *a, **k: pytest.fail("the search ran"))
    with pytest.raises(UserError, match="wider than the vocabulary"):
        p2_vis_caption.main(["--img_dir", str(img_dir), "--out_dir", str(tmp_path), "--beam", "40000", *TINY])


def test_a_missing_or_unreadable_image_is_named_before_the_model_loads(img_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(p2_vis_caption, "load_captioner", lambda *a: pytest.fail("the model was loaded"))
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    for image, message in ((tmp_path / "missing.jpg", "image not found"), (tmp_path / "bad.jpg", "cannot read image")):
        with pytest.raises(UserError, match=message):
            p2_vis_caption.main(["--images", str(image), "--out_dir", str(tmp_path / "out"), *TINY])


@pytest.mark.parametrize("flag, where", [("--out_dir", "/proc/captions"), ("--html", "/sys/captions/page.html")])
def test_outputs_where_nothing_can_be_written_are_refused_before_captioning(img_dir, monkeypatch, flag, where):
    monkeypatch.setattr(p2_vis_caption, "load_captioner", lambda *a: pytest.fail("the model was loaded"))
    with pytest.raises(UserError, match="cannot write in"):
        p2_vis_caption.main(["--img_dir", str(img_dir), flag, where, *TINY])


def test_an_image_name_near_the_length_limit_is_captioned_and_its_page_folder_made(tmp_path):
    image = tmp_path / "in" / ("n" * 250 + ".jpg")  # its figure's name is 254 bytes, its temporary's longer
    image.parent.mkdir()
    Image.new("RGB", (40, 30), "red").save(image)
    p2_vis_caption.main(["--images", str(image), "--out_dir", str(tmp_path / "out"), "--html",
                         str(tmp_path / "new" / "page.html"), "--max_steps", "2", *TINY])
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["n" * 250 + ".png"]
    assert (tmp_path / "new" / "page.html").is_file()


def test_a_checkpoint_whose_state_dict_holds_a_number_is_one_line(img_dir, tmp_path):
    state = catr.build_model("tiny").state_dict()
    state["transformer.decoder.norm.bias"] = 3
    torch.save({"model": state}, tmp_path / "w.pt")
    with pytest.raises(UserError, match=r"values that are not tensors \(1\): transformer.decoder.norm.bias \(int\)"):
        p2_vis_caption.main(["--img_dir", str(img_dir), "--out_dir", str(tmp_path / "out"), "--weights",
                             str(tmp_path / "w.pt"), "--config", "tiny"])
