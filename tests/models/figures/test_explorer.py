"""The explorer pages' data: quantisation error, what is embedded, the size budget, bad --html paths."""
import base64
import json
import re

import numpy as np
import pytest
import torch

import p1_vis_attention
import p2_vis_caption
from data.io import UserError
from models.figures.explorer import (HEAD_ROWS_BUDGET, LEVELS, caption_image_entry, check_html_path, colour_codes,
                                     explorer_html, quantize_maps, vit_image_entry)

PAGE_LIMIT = 20_000_000  # bytes


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
    entry = vit_image_entry("a.png", np.zeros((4, 6, 3), np.uint8), attentions, relevancy,
                            [(4, "cat", 0.7), (1, "dog", 0.2)], torch.eye(6), grid)
    assert entry["cls"]["shape"] == [layers, 1 + heads, *grid]
    assert entry["rows"]["shape"] == [layers, 1 + heads, 6, *grid]  # small: per-head rows fit
    assert entry["rollout"]["shape"] == [layers, *grid] and entry["relevancy"]["shape"] == [2, *grid]
    rows = dequantize_maps(entry["rows"])
    np.testing.assert_allclose(rows[1, 0, 4], attentions[1].mean(0)[1 + 4, 1:].reshape(grid), atol=1 / 255)
    np.testing.assert_allclose(rows[1, 2, 4], attentions[1][1, 1 + 4, 1:].reshape(grid), atol=1 / 255)
    cls = dequantize_maps(entry["cls"])
    np.testing.assert_allclose(cls[2, 0], attentions[2].mean(0)[0, 1:].reshape(grid), atol=1 / 255)
    assert [c["name"] for c in entry["classes"]] == ["cat", "dog"]
    mean_only = vit_image_entry("a.png", np.zeros((4, 6, 3), np.uint8), attentions, relevancy,
                                [(4, "cat", 0.7)], torch.eye(6), grid, head_rows_budget=0)
    assert mean_only["rows"]["shape"] == [layers, 1, 6, *grid]


def test_vit_l16_at_384_fits_20_mb():
    """ViT-L/16 at 384: 24 layers, 16 heads, 577 tokens; the size depends on the shapes only (the
    image is stored raw), so one random layer stands for all 24."""
    scores = random_attention(16, 577)
    image = np.random.default_rng(0).integers(0, 256, (384, 384, 3), dtype=np.uint8)
    entry = vit_image_entry("x.jpg", image, [scores] * 24, torch.rand(5, 24, 24),
                            [(k, f"class {k}", 0.2) for k in range(5)], torch.rand(576, 576) * 2 - 1, (24, 24))
    assert 24 * 16 * 576 * 576 > HEAD_ROWS_BUDGET and entry["rows"]["shape"] == [24, 1, 576, 24, 24]
    page = explorer_html("vit", "L_16_imagenet1k", [entry])
    assert len(page.encode()) <= PAGE_LIMIT


def test_caption_entry_adds_the_head_mean_and_takes_any_named_map_set():
    attention = torch.rand(3, 2, 4, 5, 6)  # words, layers, heads, h, w
    entry = caption_image_entry("b.jpg", np.zeros((10, 12, 3), np.uint8), "A dog", ["a", "dog", "<end>"],
                                {"cross-attention": attention, "other": torch.rand(3, 5, 6)}, layer=1,
                                beams=[("A dog", -1.5, -0.75)])
    cross, other = entry["sets"]
    assert cross["heads"] == ["mean", "0", "1", "2", "3"] and cross["layers"] == ["0", "1"]
    np.testing.assert_allclose(dequantize_maps(cross["maps"])[2, 1, 0], attention[2, 1].mean(0), atol=1 / 255)
    assert other["maps"]["shape"] == [3, 1, 1, 5, 6] and other["layers"] == ["all"]
    assert entry["beams"] == [{"caption": "A dog", "score": -1.5, "normalized": -0.75}]
    with pytest.raises(ValueError, match="2 maps for 3 words"):
        caption_image_entry("b.jpg", np.zeros((10, 12, 3), np.uint8), "", ["a", "b", "c"], {"x": torch.rand(2, 5, 6)})


def test_page_text_cannot_close_its_script_or_be_read_as_a_placeholder():
    entry = caption_image_entry("</script><b>@@DATA@@.png", np.zeros((2, 2, 3), np.uint8), "x", ["x"],
                                {"m": torch.rand(1, 2, 2)})
    page = explorer_html("caption", "<i>title</i> @@STYLE@@", [entry])
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
