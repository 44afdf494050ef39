"""p2_vis_caption.py --method relevancy, attnlrp, legrad: the maps drawn and saved are the method's, the
footer says so."""
import numpy as np
import pytest
import torch
from PIL import Image

import catr
import p2_vis_caption
from catr.relevancy import word_relevancy
from catr.token_methods import token_maps

TINY = ["--random_weights", "--config", "tiny"]


@pytest.fixture(scope="module")
def image_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("images") / "wide.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 90, 3), dtype=np.uint8)).save(path)
    return path


def _notes(monkeypatch):
    """The footers of the figures, which are not drawn (other tests draw them)."""
    notes = []
    monkeypatch.setattr(p2_vis_caption, "caption_figure", lambda *args: notes.append(args[-1]))
    monkeypatch.setattr(p2_vis_caption, "save_figure", lambda *args: None)
    return notes


def test_relevancy_maps_are_saved_and_named_in_the_footer(image_path, tmp_path, monkeypatch):
    notes = _notes(monkeypatch)
    p2_vis_caption.main(["--images", str(image_path), "--out_dir", str(tmp_path), "--max_steps", "3", "--save_npy",
                         "--method", "relevancy", "--html", str(tmp_path / "page.html"), *TINY])
    assert '"name":"relevancy"' in (tmp_path / "page.html").read_text()  # the page offers both map sets
    saved = np.load(tmp_path / "wide.npy")
    torch.manual_seed(0)  # what load_captioner does for random weights
    model = catr.build_model("tiny").eval()
    image = catr.preprocess(catr.resize_longer_side(Image.open(image_path).convert("RGB")))
    decoded = catr.greedy_decode(model, image, max_steps=3)
    ids = decoded.ids + ([catr.SEP_ID] if decoded.ended else [])
    expected = word_relevancy(model, image[None], torch.tensor([ids]))[0].numpy()
    assert saved.shape == expected.shape == (len(ids), 13, 19)
    assert np.allclose(saved, expected, rtol=1e-4, atol=1e-7)
    assert "relevancy" in notes[0] and "cross-attention" not in notes[0]
    p2_vis_caption.main(["--images", str(image_path), "--out_dir", str(tmp_path), "--max_steps", "3", *TINY])
    assert "cross-attention of decoder layer 1" in notes[1]


def test_relevancy_has_no_heads(image_path, tmp_path, run_cli):
    code, _, stderr = run_cli(p2_vis_caption.main, ["--images", image_path, "--out_dir", tmp_path, "--method",
                                                    "relevancy", "--heads", "all", *TINY])
    assert code == 2 and "--heads all" in stderr and len(stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("method, named", [("attnlrp", "AttnLRP"), ("legrad", "LeGrad")])
def test_attnlrp_and_legrad_maps_are_saved_and_named_in_the_footer(image_path, tmp_path, monkeypatch, method, named):
    notes = _notes(monkeypatch)
    p2_vis_caption.main(["--images", str(image_path), "--out_dir", str(tmp_path), "--max_steps", "3", "--save_npy",
                         "--method", method, *TINY])
    torch.manual_seed(0)
    model = catr.build_model("tiny").eval()
    image = catr.preprocess(catr.resize_longer_side(Image.open(image_path).convert("RGB")))
    decoded = catr.greedy_decode(model, image, max_steps=3)
    ids = decoded.ids + ([catr.SEP_ID] if decoded.ended else [])
    expected = token_maps(method, model, image[None], torch.tensor([ids]))[0].numpy()
    np.testing.assert_allclose(np.load(tmp_path / "wide.npy"), expected, rtol=1e-4, atol=1e-6)
    assert named in notes[0] and "cross-attention of decoder layer" not in notes[0]
