"""The explorer pages' data: quantisation error, what is embedded, the size budget, bad --html paths,
the scores read from an evaluation's JSON."""
import base64
import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

import p1_vis_attention
import p2_vis_caption
from data.io import UserError
from models.checkpoint import model_config, save_checkpoint
from models.figures.explorer import (HEAD_ROWS_BUDGET, LEVELS, caption_image_entry, check_html_path, colour_codes,
                                     explorer_html, page_image, quantize_maps, vit_image_entry, vit_model_entry)
from models.figures.scores import model_scores, read_scores
from models.figures.vit_page import page_methods
from models.vit import random_vit

PAGE_LIMIT = 25_000_000  # bytes


def page_data(page: str) -> dict:
    text = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S).group(1)
    return json.loads(text)


def dequantize_maps(entry: dict) -> np.ndarray:
    """The float32 maps an entry of `quantize_maps` stands for, as the page reads them."""
    shape = entry["shape"]
    codes = np.frombuffer(base64.b64decode(entry["codes"]), np.uint8).reshape(-1, shape[-2] * shape[-1])
    lo = np.frombuffer(base64.b64decode(entry["lo"]), "<f4")[:, None]
    hi = np.frombuffer(base64.b64decode(entry["hi"]), "<f4")[:, None]
    return (lo + codes.astype(np.float32) * ((hi - lo) / LEVELS)).reshape(shape)


def random_attention(heads, tokens, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(heads, tokens, tokens, generator=g).mul(3).softmax(-1)


def test_quantisation_error_is_at_most_half_a_step_of_each_maps_range():
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(3, 5, 7, 9, generator=g) * torch.logspace(-6, 2, 5)[None, :, None, None]
    maps[0, 0] = 0.25  # a constant map comes back exactly
    back = dequantize_maps(quantize_maps(maps))
    assert back.shape == maps.shape and back.dtype == np.float32
    span = (maps.amax(dim=(-2, -1)) - maps.amin(dim=(-2, -1))).numpy()[..., None, None]
    error = np.abs(back - maps.numpy())
    assert (error <= span / 510 * (1 + 1e-5) + 1e-7 * np.abs(maps.numpy())).all()
    assert error.max() > 0 and (error[0, 0] == 0).all()
    # the page colours a map by its own range: the colour code is the quantisation code
    entry = quantize_maps(maps)
    codes = np.frombuffer(base64.b64decode(entry["codes"]), np.uint8).reshape(maps.shape)
    np.testing.assert_array_equal(colour_codes(maps[1, 2].numpy()), codes[1, 2])


def test_vit_entry_holds_every_layer_and_the_top_classes():
    layers, heads, grid = 3, 2, (2, 3)
    attentions = [random_attention(heads, 7, seed) for seed in range(layers)]
    relevancy = torch.rand(2, *grid)
    methods = [{"name": "relevancy", "maps": relevancy, "captions": ["for cat", "for dog"]}]
    entry = vit_image_entry(np.zeros((4, 6, 3), np.uint8), attentions, [(4, "cat", 0.7), (1, "dog", 0.2)], methods,
                            grid, importance=torch.arange(6.0).reshape(layers, heads))
    assert entry["cls"]["shape"] == [layers, 1 + heads, *grid]
    assert entry["rows"]["shape"] == [layers, 1 + heads, 6, *grid]  # small: per-head rows fit
    assert entry["rollout"]["shape"] == [layers, *grid] and entry["methods"][0]["maps"]["shape"] == [2, *grid]
    rows = dequantize_maps(entry["rows"])
    np.testing.assert_allclose(rows[1, 0, 4], attentions[1].mean(0)[1 + 4, 1:].reshape(grid), atol=1 / 255)
    np.testing.assert_allclose(rows[1, 2, 4], attentions[1][1, 1 + 4, 1:].reshape(grid), atol=1 / 255)
    cls = dequantize_maps(entry["cls"])
    np.testing.assert_allclose(cls[2, 0], attentions[2].mean(0)[0, 1:].reshape(grid), atol=1 / 255)
    assert [c["name"] for c in entry["classes"]] == ["cat", "dog"] and entry["importance"][2] == [4.0, 5.0]
    mean_only = vit_image_entry(np.zeros((4, 6, 3), np.uint8), attentions, [(4, "cat", 0.7)], [], grid,
                                head_rows_budget=0)
    assert mean_only["rows"]["shape"] == [layers, 1, 6, *grid] and mean_only["importance"] is None
    with pytest.raises(ValueError, match="2 maps for 1 captions"):
        vit_image_entry(np.zeros((4, 6, 3), np.uint8), attentions, [], [{**methods[0], "captions": ["x"]}], grid)


def test_a_second_model_that_saw_the_same_pixels_stores_no_copy():
    first, same, other = ({"size": [4, 6], "rgb": rgb, "classes": []} for rgb in ("AAAA", "AAAA", "BBBB"))
    assert page_image("a.png", [first, same])["models"][1] == {"classes": []}
    assert page_image("a.png", [first, other])["models"][1]["rgb"] == "BBBB"
    with pytest.raises(ValueError, match="1 entries for 2 models"):
        explorer_html("vit", "t", [{}, {}], [page_image("a.png", [first])])


def test_vit_l16_at_384_compared_with_a_second_model_fits_25_mb():
    """ViT-L/16 at 384: 24 layers, 16 heads, 577 tokens; two models, every map of the page. The size
    depends on the shapes only (the image is stored raw), so one random layer stands for all 24, and
    the second model's entry is the first's with other pixels (the worst case: both images stored)."""
    scores = random_attention(16, 577)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (384, 384, 3), dtype=np.uint8)
    methods = [{"name": m["name"], "maps": torch.rand(5 if m["per_class"] else 1, 24, 24),
                "captions": ["a caption of about this length, for class 123 american_pit_bull_terrier"] *
                            (5 if m["per_class"] else 1)} for m in page_methods()]
    entry = vit_image_entry(image, [scores] * 24, [(k, f"class {k}", 0.2) for k in range(5)], methods, (24, 24),
                            importance=torch.rand(24, 16))
    assert 24 * 16 * 576 * 576 > HEAD_ROWS_BUDGET and entry["rows"]["shape"] == [24, 1, 576, 24, 24]
    other = {**entry, "rgb": base64.b64encode(rng.integers(0, 256, (384, 384, 3), dtype=np.uint8).tobytes()).decode()}
    model = vit_model_entry("L_16_imagenet1k at 384 px", (24, 24), 24, 16, torch.rand(576, 576) * 2 - 1)
    page = explorer_html("vit", "L_16_imagenet1k", [model, model], [page_image("x.jpg", [entry, other])],
                         methods=page_methods(), scored={})
    assert "rgb" in page_data(page)["images"][0]["models"][1]
    assert len(page.encode()) <= PAGE_LIMIT


def test_caption_entry_adds_the_head_mean_and_takes_any_named_map_set():
    attention = torch.rand(3, 2, 4, 5, 6)  # words, layers, heads, h, w
    entry = caption_image_entry(np.zeros((10, 12, 3), np.uint8), "A dog", ["a", "dog", "<end>"],
                                {"cross-attention": attention, "other": torch.rand(3, 5, 6)},
                                beams=[("A dog", -1.5, -0.75)], importance=torch.ones(2, 4))
    cross, other = entry["sets"]
    assert cross["heads"] == ["mean", "0", "1", "2", "3"] and cross["layers"] == ["0", "1"]
    np.testing.assert_allclose(dequantize_maps(cross["maps"])[2, 1, 0], attention[2, 1].mean(0), atol=1 / 255)
    assert other["maps"]["shape"] == [3, 1, 1, 5, 6] and other["layers"] == ["all"]
    assert entry["beams"] == [{"caption": "A dog", "score": -1.5, "normalized": -0.75}]
    assert entry["importance"] == [[1.0] * 4] * 2
    with pytest.raises(ValueError, match="2 maps for 3 words"):
        caption_image_entry(np.zeros((10, 12, 3), np.uint8), "", ["a", "b", "c"], {"x": torch.rand(2, 5, 6)})


def test_page_text_cannot_close_its_script_or_be_read_as_a_placeholder():
    entry = caption_image_entry(np.zeros((2, 2, 3), np.uint8), "x", ["x"], {"m": torch.rand(1, 2, 2)})
    page = explorer_html("caption", "<i>title</i> @@STYLE@@", [{"title": "t", "scores": None}],
                         [page_image("</script><b>@@DATA@@.png", [entry])], layer=0)
    assert page.count("</script>") == 2 and "<i>" not in page  # the page's own two scripts
    assert page_data(page)["images"][0]["name"] == "</script><b>@@DATA@@.png"
    assert "http://" not in page.replace("http-equiv", "") and "https://" not in page


@pytest.mark.parametrize("name, message", [("file/page.html", "a file stands where its folder should be"),
                                           ("page.htm", "ending in .html"), ("page", "ending in .html")])
def test_bad_html_path_is_one_line(tmp_path, name, message):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=message) as err:
        check_html_path(tmp_path / name)
    assert "\n" not in str(err.value)
    assert check_html_path(tmp_path / "Page.HTML") == tmp_path / "Page.HTML"


def test_a_page_in_a_missing_folder_is_accepted_as_an_output_folder_is(tmp_path):
    assert check_html_path(tmp_path / "new" / "page.html") == tmp_path / "new" / "page.html"


@pytest.mark.parametrize("main, argv", [
    (p1_vis_attention.main, ["--ckpt", "unused.pt", "--images", "unused.jpg"]),
    (p2_vis_caption.main, ["--images", "unused.jpg", "--random_weights", "--config", "tiny"]),
])
def test_scripts_check_the_page_path_before_any_work(run_cli, tmp_path, main, argv):
    (tmp_path / "file").write_text("")
    code, _, err = run_cli(main, argv + ["--html", tmp_path / "file" / "page.html"])
    assert code == 2 and err.strip().splitlines()[-1] == (
        f"error: --html {tmp_path / 'file' / 'page.html'}: a file stands where its folder should be "
        f"({tmp_path / 'file'})")
    code, _, err = run_cli(main, argv + ["--html", tmp_path / "page.png"])
    assert code == 2 and "ending in .html" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(main, argv)
    assert code == 2 and "nothing to write" in err


def test_scores_are_read_from_any_evaluation_json_with_their_intervals(tmp_path):
    record = {"methods": {
        "relevancy": {"positive_auc": 12.5, "positive_auc_ci95": [11.0, 13.75], "pointing_game": None,
                      "positive_curve": [1.0, 0.5], "new_measure": 3,
                      "against_random": {"positive_auc": {"difference": -3.0, "difference_ci95": [-4, -2],
                                                          "verdict": "beats"}}},
        "random": {"positive_auc": 15.5}},
        "checkpoints": [{"checkpoint": str(tmp_path / "b.pt"), "methods": {"random": {"iou": 1.0}}}]}
    (tmp_path / "scores.json").write_text(json.dumps(record))
    scores = read_scores(tmp_path / "scores.json")
    assert scores["file"] == "scores.json"
    assert scores["methods"]["relevancy"] == {"measures": [["positive_auc", 12.5, 11.0, 13.75], ["new_measure", 3.0, None, None]],
                                              "verdicts": [["random", "positive_auc", "beats"]]}
    assert read_scores(tmp_path / "scores.json", model_path=tmp_path / "b.pt")["methods"] == {
        "random": {"measures": [["iou", 1.0, None, None]], "verdicts": []}}
    # a second model gets a file's entry only where the file names its checkpoint
    assert model_scores([tmp_path / "scores.json"], 1, tmp_path / "b.pt")["methods"]["random"]["measures"][0][0] == "iou"
    assert model_scores([tmp_path / "scores.json"], 1, tmp_path / "c.pt") is None
    assert model_scores([tmp_path / "scores.json"], 0, tmp_path / "c.pt")["methods"]["random"]["measures"][0][1] == 15.5
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"images": 3}))
    for name, message in (("bad.json", "not a JSON file"), ("other.json", 'no "methods"'), ("missing.json", "cannot read")):
        with pytest.raises(UserError, match=message) as err:
            read_scores(tmp_path / name)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("main, argv", [
    (p1_vis_attention.main, ["--ckpt", "unused.pt", "--images", "unused.jpg"]),
    (p2_vis_caption.main, ["--images", "unused.jpg", "--random_weights", "--config", "tiny"]),
])
def test_compare_and_scores_are_checked_before_any_work(run_cli, tmp_path, main, argv):
    (tmp_path / "bad.json").write_text("[]")
    page = ["--html", tmp_path / "page.html"]
    for extra, message in ((["--out_dir", tmp_path, "--compare", tmp_path / "b.pt"], "apply to the page: pass --html FILE"),
                           (page + ["--compare", tmp_path / "missing.pt"], "file not found"),
                           (page + ["--scores", tmp_path / "bad.json"], 'no "methods"'),
                           (page + ["--scores", tmp_path / "a.json", tmp_path / "b.json"], "--scores takes one FILE")):
        code, _, err = run_cli(main, argv + extra)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, extra


def test_compare_refuses_a_model_of_another_shape(run_cli, ckpt, tmp_path):
    other = tmp_path / "other.pt"
    save_checkpoint(other, random_vit("micro", image_size=64), model_config("micro", 64), epoch=1)
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    code, _, err = run_cli(p1_vis_attention.main, ["--ckpt", ckpt, "--images", image, "--html", tmp_path / "page.html",
                                                   "--compare", other, "--device", "cpu"])
    assert code == 2 and "differ in shape (4x4 patches, 2 layers, 2 heads against 8x8, 2, 2)" in err
    assert not (tmp_path / "page.html").exists()
