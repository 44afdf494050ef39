"""The explorer pages in headless Chromium: offline, and drawing exactly the maps Python computes.

Each check reads the canvas back at the centre of every cell and compares it with the same map
coloured in numpy: a cell may differ by one colour code, the rounding of the 8-bit quantisation.
"""
import numpy as np
import pytest
import torch
from PIL import Image

import catr
import p1_vis_attention
import p2_vis_caption
from data.images import open_rgb
from data.transforms import denormalize, eval_transform_from_config
from models.checkpoint import model_from_checkpoint
from browser import cell_colours, point_in_cell
from models.figures.explorer import (MAP_CMAP, SIMILARITY_CMAP, colour_codes, colour_table, vit_image_entry,
                                     write_explorer)
from models.explain.maps import attention_rollout, collect_attention, position_embedding_similarity, relevancy_maps

GRID = 4  # micro at 32 px: a 4 x 4 patch grid, 2 layers, 2 heads


def assert_draws(page, canvas_id, expected, cmap=MAP_CMAP, value_range=None):
    """The canvas, at full opacity, shows `expected` (h, w) cell by cell within one colour code."""
    h, w = expected.shape
    drawn = cell_colours(page, canvas_id, h, w)
    codes = colour_codes(np.asarray(expected, dtype=np.float64), value_range)
    table = colour_table(cmap).astype(np.int64)
    near = [np.abs(drawn - table[np.clip(codes + d, 0, 255)]).max(axis=-1) for d in (-1, 0, 1)]
    assert (np.min(near, axis=0) <= 1).all(), f"{canvas_id} does not show the expected map"


@pytest.fixture(scope="module")
def vit_page(ckpt, tmp_path_factory):
    """The micro checkpoint's page for one image, and the maps computed directly from the model."""
    folder = tmp_path_factory.mktemp("vit_page")
    image = folder / "cat <b>&.png"  # markup in a name is shown as text
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(image)
    p1_vis_attention.main(["--ckpt", str(ckpt), "--images", str(image), "--html", str(folder / "page.html"),
                           "--device", "cpu"])
    model, config = model_from_checkpoint(ckpt)
    x = eval_transform_from_config(config)(open_rgb(image))[None]
    logits, attentions = collect_attention(model, x)
    scores = [a[0].double() for a in attentions]  # (heads, N, N) per layer
    top = logits[0].softmax(-1).topk(5).indices.tolist()
    similarity = position_embedding_similarity(model.positional_embedding.pos_embedding)
    # the same image as a model too large for per-head rows would embed it: the mean over heads only
    entry = vit_image_entry("mean only", denormalize(x[0]), [a[0] for a in attentions], torch.rand(1, GRID, GRID),
                            [(0, "class 0", 1.0)], similarity, (GRID, GRID), head_rows_budget=0)
    write_explorer(folder / "mean_only.html", "vit", "mean only", [entry])
    return {"path": folder / "page.html", "name": image.name, "scores": scores, "top": top, "model": model, "x": x,
            "similarity": similarity.double(), "mean_only": folder / "mean_only.html"}


def from_row(scores, patch):
    return scores.mean(0)[1 + patch, 1:].reshape(GRID, GRID).numpy()


def hover(page, canvas_id, r, c, click=False):
    x, y = point_in_cell(page, canvas_id, r, c, GRID, GRID)
    page.mouse.move(x, y)
    if click:
        page.mouse.click(x, y)


def test_vit_page_opens_offline_with_no_error(vit_page, open_page):
    page, requests, problems = open_page(vit_page["path"])
    assert requests == [vit_page["path"].resolve().as_uri()]  # the file itself and nothing else
    assert problems == []
    top = vit_page["top"][0]
    assert page.text_content("#title").startswith(f"{vit_page['name']}: predicted ")
    assert page.locator("#classes label").count() == 5 and f"{top} " in page.text_content("#classes")


def test_hovering_a_patch_draws_its_row_at_the_chosen_layer(vit_page, open_page):
    page, _, problems = open_page(vit_page["path"])
    page.fill("#opacity", "100")
    page.check("input[value=from]")
    scores = vit_page["scores"]
    hover(page, "grid", 1, 2)
    assert_draws(page, "map", from_row(scores[1], 1 * GRID + 2))  # the last layer first
    page.keyboard.press("ArrowLeft")
    assert page.text_content("#layer-label") == "0 of 0-1"
    assert_draws(page, "map", from_row(scores[0], 1 * GRID + 2))
    hover(page, "map", 3, 0)
    assert_draws(page, "map", from_row(scores[0], 3 * GRID + 0))
    assert_draws(page, "similarity", vit_page["similarity"][3 * GRID].reshape(GRID, GRID).numpy(),
                 SIMILARITY_CMAP, (-1, 1))
    page.keyboard.press("ArrowRight")
    assert_draws(page, "map", from_row(scores[1], 3 * GRID + 0))
    # a click pins the patch: moving on no longer changes the map, a second click releases it
    hover(page, "grid", 2, 1, click=True)
    hover(page, "grid", 0, 3)
    assert_draws(page, "map", from_row(scores[1], 2 * GRID + 1))
    hover(page, "grid", 2, 1, click=True)
    hover(page, "grid", 0, 3)
    assert_draws(page, "map", from_row(scores[1], 0 * GRID + 3))
    # per-head rows are embedded for a model this small
    page.select_option("#head", "2")
    assert_draws(page, "map", scores[1][1, 1 + 3, 1:].reshape(GRID, GRID).numpy())
    assert problems == []


def test_a_page_without_per_head_rows_says_so_and_draws_the_mean(vit_page, open_page):
    page, _, problems = open_page(vit_page["mean_only"])
    page.fill("#opacity", "100")
    page.select_option("#head", "1")  # the [class] rows have every head
    assert_draws(page, "map", vit_page["scores"][1][0, 0, 1:].reshape(GRID, GRID).numpy())
    page.check("input[value=from]")
    hover(page, "grid", 2, 2)
    assert page.is_disabled("#head") and "mean over heads only" in page.text_content("#note")
    assert_draws(page, "map", from_row(vit_page["scores"][1], 2 * GRID + 2))
    assert problems == []


def test_head_method_and_class_choices_change_the_map(vit_page, open_page):
    page, _, problems = open_page(vit_page["path"])
    page.fill("#opacity", "100")
    scores = vit_page["scores"]
    assert_draws(page, "map", scores[1].mean(0)[0, 1:].reshape(GRID, GRID).numpy())  # [class] row, last layer
    page.select_option("#head", "1")
    assert_draws(page, "map", scores[1][0, 0, 1:].reshape(GRID, GRID).numpy())
    page.check("input[value=rollout]")
    assert page.is_disabled("#head")
    assert_draws(page, "map", attention_rollout(scores)[0, 1:].reshape(GRID, GRID).numpy())
    page.locator("h1").click()  # the focus off the radio buttons' own arrow keys
    page.keyboard.press("ArrowDown")
    assert_draws(page, "map", attention_rollout(scores[:1])[0, 1:].reshape(GRID, GRID).numpy())
    for rank in (0, 3):
        page.check(f"input[value='relevancy:{rank}']")
        assert page.is_disabled("#layer")
        _, _, expected = relevancy_maps(vit_page["model"], vit_page["x"], vit_page["top"][rank])
        assert_draws(page, "map", expected[0].numpy())
    # opacity blends the map over the image, smoothing interpolates between cells
    before = cell_colours(page, "map", 8, 8)
    page.fill("#opacity", "40")
    assert (cell_colours(page, "map", 8, 8) != before).any()
    page.fill("#opacity", "100")
    page.check("#smooth")
    assert (cell_colours(page, "map", 8, 8) != before).any()
    assert problems == []


@pytest.fixture(scope="module")
def caption_page(tiny_catr, tmp_path_factory):
    folder = tmp_path_factory.mktemp("caption_page")
    image = folder / "wide.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (60, 90, 3), dtype=np.uint8)).save(image)
    p2_vis_caption.main(["--images", str(image), "--html", str(folder / "page.html"), "--max_steps", "4",
                         "--beam", "2", "--random_weights", "--config", "tiny", "--device", "cpu"])
    image = catr.preprocess(catr.resize_longer_side(open_rgb(image)))
    decoded = catr.generate(tiny_catr, [image], beam_size=2, max_steps=4)[0]  # the script's random weights
    return {"path": folder / "page.html", "decoded": decoded}


def test_clicking_word_k_shows_word_ks_map(caption_page, open_page):
    page, requests, problems = open_page(caption_page["path"])
    assert requests == [caption_page["path"].resolve().as_uri()] and problems == []
    attention = caption_page["decoded"].attention.double()  # (words, layers, heads, h, w)
    words = page.locator("#words button")
    assert words.count() == len(attention)
    page.fill("#opacity", "100")
    layer = attention.shape[1] + p2_vis_caption.DEFAULT_LAYER
    assert page.text_content("#layer-label").startswith(f"{layer} of")
    for k in (len(attention) - 1, 1):
        words.nth(k).click()
        page.mouse.move(0, 0)  # off the word: the pinned word stays
        assert_draws(page, "map", attention[k, layer].mean(0).numpy())
    page.select_option("#head", "3")  # head 2 (0 is the mean)
    assert_draws(page, "map", attention[1, layer, 2].numpy())
    page.locator("h1").click()
    page.keyboard.press("ArrowRight")
    assert_draws(page, "map", attention[1, layer + 1, 2].numpy())
    beams = caption_page["decoded"].beams
    rows = page.locator("#beams tr")
    assert rows.count() == 1 + len(beams) and len(beams) >= 2
    assert [rows.nth(i + 1).locator("td").nth(2).text_content() for i in range(len(beams))] == \
        [f"{beam.score:.3f}" for beam in beams]
