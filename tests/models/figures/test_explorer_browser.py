"""The explorer pages in headless Chromium: offline, every control by keyboard alone, two models
driven by one set of controls, the scores beside the methods, the layout on small screens.

Each check of a drawing reads the canvas back at the centre of every cell and compares it with the
same map coloured in numpy: a cell may differ by one colour code, the rounding of the 8-bit
quantisation.
"""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import catr
import p1_vis_attention
import p2_vis_caption
from data.images import open_rgb
from data.transforms import denormalize, eval_transform_from_config
from models.checkpoint import model_config, model_from_checkpoint, save_checkpoint
from models.explain.heads import vit_head_importance
from browser import cell_colours, point_in_cell
from models.explain.maps import attention_rollout, collect_attention, position_embedding_similarity, relevancy_maps
from models.figures.explorer import (MAP_CMAP, SIMILARITY_CMAP, caption_image_entry, colour_codes, colour_table,
                                     page_image, vit_image_entry, write_explorer)
from models.figures.vit_page import vit_page_model
from models.vit import random_vit

GRID = 4  # micro at 32 px: a 4 x 4 patch grid, 2 layers, 2 heads
SCORES = {"methods": {
    "relevancy": {"positive_auc": 12.5, "positive_auc_ci95": [11.0, 13.75],
                  "against_random": {"positive_auc": {"difference": -3, "verdict": "beats"}}},
    "last": {"positive_auc": 21.25},
    "random": {"positive_auc": 15.5},
    "baseline_x": {"iou": 7.5},
}}


def assert_draws(page, canvas_id, expected, cmap=MAP_CMAP, value_range=None):
    """The canvas, at full opacity, shows `expected` (h, w) cell by cell within one colour code."""
    h, w = expected.shape
    drawn = cell_colours(page, canvas_id, h, w)
    codes = colour_codes(np.asarray(expected, dtype=np.float64), value_range)
    table = colour_table(cmap).astype(np.int64)
    near = [np.abs(drawn - table[np.clip(codes + d, 0, 255)]).max(axis=-1) for d in (-1, 0, 1)]
    assert (np.min(near, axis=0) <= 1).all(), f"{canvas_id} does not show the expected map"


def tab_to(page, selector, presses=40):
    """Press Tab until the element matching `selector` has the focus."""
    for _ in range(presses):
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def model_maps(ckpt, image):
    """What the page should draw for a checkpoint: every layer's attention, the top classes, the
    position-embedding similarity and the head importance."""
    model, config = model_from_checkpoint(ckpt)
    x = eval_transform_from_config(config)(open_rgb(image))[None]
    logits, attentions = collect_attention(model, x)
    return {"model": model, "x": x, "scores": [a[0].double() for a in attentions],
            "top": logits[0].softmax(-1).topk(5).indices.tolist(),
            "similarity": position_embedding_similarity(model.positional_embedding.pos_embedding).double(),
            "importance": vit_head_importance(model, x)}


@pytest.fixture(scope="module")
def vit_pages(ckpt, tmp_path_factory):
    """One model's page with scores, two models' page, a page without per-head rows; and the maps
    computed directly from the models."""
    folder = tmp_path_factory.mktemp("vit_page")
    image = folder / "cat <b>&.png"  # markup in a name is shown as text
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(image)
    torch.manual_seed(1)
    other = folder / "other.pt"
    save_checkpoint(other, random_vit("micro"), model_config("micro", 32), epoch=1)
    (folder / "scores.json").write_text(json.dumps(SCORES))
    common = ["--ckpt", str(ckpt), "--images", str(image), "--device", "cpu"]
    p1_vis_attention.main(common + ["--html", str(folder / "one.html"), "--scores", str(folder / "scores.json")])
    p1_vis_attention.main(common + ["--html", str(folder / "two.html"), "--compare", str(other)])
    first = model_maps(ckpt, image)
    # the same image as a model too large for per-head rows would embed it: the mean over heads only
    attentions = [s.float() for s in first["scores"]]
    entry = vit_image_entry(denormalize(first["x"][0]), attentions, [(0, "class 0", 1.0)], [], (GRID, GRID),
                            head_rows_budget=0)
    write_explorer(folder / "mean_only.html", "vit", "mean only", [vit_page_model(first["model"], "mean only")],
                   [page_image("mean only", [entry])], methods=[], scored={})
    return {"one": folder / "one.html", "two": folder / "two.html", "mean_only": folder / "mean_only.html",
            "name": image.name, "models": [first, model_maps(other, image)]}


def from_row(scores, patch, head=None):
    rows = scores.mean(0) if head is None else scores[head]
    return rows[1 + patch, 1:].reshape(GRID, GRID).numpy()


def cls_row(scores, head=None):
    rows = scores.mean(0) if head is None else scores[head]
    return rows[0, 1:].reshape(GRID, GRID).numpy()


def relevancy(maps, rank):
    return relevancy_maps(maps["model"], maps["x"], maps["top"][rank])[2][0].numpy()


def test_vit_page_opens_offline_with_no_error_and_shows_its_key_map(vit_pages, open_page):
    page, requests, problems = open_page(vit_pages["one"])
    assert requests == [vit_pages["one"].resolve().as_uri()]  # the file itself and nothing else
    assert problems == []
    top = vit_pages["models"][0]["top"][0]
    assert page.text_content("#title").startswith(f"{vit_pages['name']}: predicted ")
    assert page.locator("#classes label").count() == 5 and f"{top} " in page.text_content("#classes")
    assert page.locator("meta[name=viewport]").count() == 1
    assert page.is_visible(".keys") and "pin the patch" in page.text_content(".keys")
    # the page opens on a map that hovering changes, and says what hovering does
    assert page.is_checked("input[name=view][value=from]") and "attends to" in page.text_content("#hint")


def test_keyboard_alone_changes_map_class_layer_head_and_patch(vit_pages, open_page):
    page, _, problems = open_page(vit_pages["one"])
    page.fill("#opacity", "100")
    maps = vit_pages["models"][0]
    scores = maps["scores"]
    centre = 2 * GRID + 2
    assert_draws(page, "map-0", from_row(scores[1], centre))  # the last layer, the centre patch
    tab_to(page, "input[name=view]:checked")
    page.keyboard.press("ArrowUp")  # the radio group's own keys: the map type
    assert page.is_checked("input[value=cls]")
    assert_draws(page, "map-0", cls_row(scores[1]))
    for _ in range(3):
        page.keyboard.press("ArrowDown")  # from, rollout, relevancy
    assert page.is_checked("input[value=relevancy]")
    assert_draws(page, "map-0", relevancy(maps, 0))
    page.keyboard.press("Tab")  # the class, its own radio group
    page.keyboard.press("ArrowDown")
    assert page.is_checked("input[name=class][value='1']")
    assert_draws(page, "map-0", relevancy(maps, 1))
    page.keyboard.press("Shift+Tab")
    for _ in range(3):
        page.keyboard.press("ArrowUp")  # back to [class]-token attention
    tab_to(page, "#layer")  # the class group is off for this map: Tab passes it
    page.keyboard.press("ArrowLeft")
    assert page.text_content("#layer-label") == "0 of 0-1"
    assert_draws(page, "map-0", cls_row(scores[0]))
    tab_to(page, "#head")
    page.keyboard.press("ArrowDown")
    assert_draws(page, "map-0", cls_row(scores[0], head=0))
    tab_to(page, "#grid")
    page.keyboard.press("m")  # the next map: attention from the patch, where the keyboard's patch is
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowLeft")
    assert_draws(page, "map-0", from_row(scores[0], 1 * GRID + 1, head=0))
    page.keyboard.press("Enter")  # pinned: it stays when the grid loses the focus
    page.keyboard.press("Shift+Tab")
    assert_draws(page, "map-0", from_row(scores[0], 1 * GRID + 1, head=0))
    page.keyboard.press("]")
    page.keyboard.press(".")
    assert_draws(page, "map-0", from_row(scores[1], 1 * GRID + 1, head=1))
    page.keyboard.press("Escape")  # released: the centre again
    assert_draws(page, "map-0", from_row(scores[1], centre, head=1))
    assert_draws(page, "similarity-0", maps["similarity"][centre].reshape(GRID, GRID).numpy(), SIMILARITY_CMAP, (-1, 1))
    assert problems == []


def test_layer_keys_leave_a_layer_the_map_does_not_use(vit_pages, open_page):
    page, _, _ = open_page(vit_pages["one"])
    page.check("input[value=relevancy]")
    assert page.is_disabled("#layer") and page.text_content("#layer-label") == "all layers"
    page.locator("h1").click()
    for key in ("ArrowLeft", "[", "ArrowLeft", "["):
        page.keyboard.press(key)
    page.check("input[value=rollout]")
    assert page.text_content("#layer-label") == "1 of 0-1"


def test_mouse_hover_and_click_pin_a_patch(vit_pages, open_page):
    page, _, problems = open_page(vit_pages["one"])
    page.fill("#opacity", "100")
    scores = vit_pages["models"][0]["scores"]

    def hover(r, c, click=False):
        x, y = point_in_cell(page, "grid", r, c, GRID, GRID)
        page.mouse.move(x, y)
        if click:
            page.mouse.click(x, y)

    hover(3, 0)
    assert_draws(page, "map-0", from_row(scores[1], 3 * GRID))
    hover(2, 1, click=True)
    hover(0, 3)
    assert_draws(page, "map-0", from_row(scores[1], 2 * GRID + 1))
    hover(2, 1, click=True)  # a second click releases it
    hover(0, 3)
    assert_draws(page, "map-0", from_row(scores[1], 3))
    assert problems == []


def test_heads_sort_by_their_importance(vit_pages, open_page):
    page, _, _ = open_page(vit_pages["one"])
    importance = vit_pages["models"][0]["importance"]
    page.check("#sort-heads")
    options = page.locator("#head option").all_text_contents()
    order = importance[1].argsort(descending=True).tolist()  # the last layer, most important first
    assert options[0] == "mean of heads"
    assert options[1:] == [f"head {h} · rank {rank + 1} of 2" for rank, h in enumerate(order)]


def test_a_page_without_per_head_rows_says_so_and_draws_the_mean(vit_pages, open_page):
    page, _, problems = open_page(vit_pages["mean_only"])
    page.fill("#opacity", "100")
    scores = vit_pages["models"][0]["scores"]
    assert page.is_disabled("#head") and "mean over heads only" in page.text_content("#note")
    assert_draws(page, "map-0", from_row(scores[1], 2 * GRID + 2))
    page.check("input[value=cls]")
    page.select_option("#head", "1")  # the [class] rows have every head
    assert_draws(page, "map-0", cls_row(scores[1], head=0))
    assert problems == []


def test_compare_draws_both_models_with_one_set_of_controls(vit_pages, open_page):
    page, requests, problems = open_page(vit_pages["two"])
    assert len(requests) == 1 and problems == []
    page.fill("#opacity", "100")
    first, second = vit_pages["models"]
    assert page.locator("canvas[id^=map-]").count() == 2
    for i, maps in enumerate((first, second)):
        assert_draws(page, f"map-{i}", from_row(maps["scores"][1], 2 * GRID + 2))
    tab_to(page, "#grid")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("[")
    for i, maps in enumerate((first, second)):
        assert_draws(page, f"map-{i}", from_row(maps["scores"][0], 3 * GRID + 2))
        assert_draws(page, f"similarity-{i}", maps["similarity"][3 * GRID + 2].reshape(GRID, GRID).numpy(),
                     SIMILARITY_CMAP, (-1, 1))
    page.keyboard.press("m")  # the next map: rollout
    for i, maps in enumerate((first, second)):  # through layer 0
        assert_draws(page, f"map-{i}", attention_rollout(maps["scores"][:1])[0, 1:].reshape(GRID, GRID).numpy())


def test_scores_from_the_json_stand_beside_each_method(vit_pages, open_page):
    page, _, _ = open_page(vit_pages["one"])
    views = page.locator("#views label")
    text = {views.nth(i).locator("input").get_attribute("value"): views.nth(i).text_content() for i in range(views.count())}
    assert "positive auc 12.5 [11.0, 13.8]" in text["relevancy"] and "against random, positive auc: beats" in text["relevancy"]
    assert "positive auc 21.3" in text["cls"] and "last" in text["cls"]  # the measured map of the last layer
    assert "positive auc 15.5" in text["random"] and "score" not in text["from"]
    others = page.text_content("#other-scores")
    assert "baseline_x: iou 7.50" in others and "scores.json" in others


@pytest.mark.parametrize("width, height", [(390, 844), (800, 600)])
def test_small_screens_show_the_controls_without_sideways_scrolling(vit_pages, open_page, width, height):
    page, _, _ = open_page(vit_pages["two"], viewport={"width": width, "height": height})
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for selector in ("#views", "#layer", "#head", "#opacity", "#map-0", "#map-1"):
        box = page.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, selector
    font = page.evaluate("parseFloat(getComputedStyle(document.querySelector('figcaption')).fontSize)")
    assert font >= 11  # laid out at the screen's width, not shrunk from 980 px
    if height == 600:  # beside the controls, the maps start on the first screen
        assert page.locator("#map-0").bounding_box()["y"] < height and page.locator("#layer").bounding_box()["y"] < height


def test_nothing_moves_when_a_caption_changes_length(vit_pages, open_page):
    page, _, _ = open_page(vit_pages["two"])
    boxes = "() => [...document.querySelectorAll('fieldset, input, select, canvas')].map((e) => JSON.stringify(e.getBoundingClientRect()))"
    before = page.evaluate(boxes)
    captions = set()
    for view in ("cls", "rollout", "relevancy", "random", "from"):
        page.check(f"input[value={view}]")
        captions.add(page.text_content("#map-caption-0"))
        assert page.evaluate(boxes) == before, view
    assert len(captions) == 5


@pytest.fixture(scope="module")
def caption_page(tiny_catr, tmp_path_factory):
    """The script's page of two captioners (the tiny random one and another), and a page of two
    hand-made captions that share some words."""
    folder = tmp_path_factory.mktemp("caption_page")
    image = folder / "wide.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (60, 90, 3), dtype=np.uint8)).save(image)
    torch.manual_seed(1)
    other = catr.build_model("tiny").eval()
    torch.save({"model": other.state_dict()}, folder / "other.pt")
    grounding = {"methods": {f"attention@{layer}": {"correctness": 10.0 + layer} for layer in range(3)}}
    grounding["methods"].update({"uniform": {"correctness": 5.0}})
    (folder / "grounding.json").write_text(json.dumps(grounding))
    p2_vis_caption.main(["--images", str(image), "--html", str(folder / "page.html"), "--max_steps", "4",
                         "--beam", "2", "--random_weights", "--config", "tiny", "--device", "cpu",
                         "--compare", str(folder / "other.pt"), "--scores", str(folder / "grounding.json")])
    picture = catr.preprocess(catr.resize_longer_side(open_rgb(image)))
    decoded = [catr.generate(model, [picture], beam_size=2, max_steps=4, all_beams=True)[0]
               for model in (tiny_catr, other)]
    maps = torch.rand(2, 4, 2, 3, 5, 6, generator=torch.Generator().manual_seed(0))  # model, word, layer, head, h, w
    pixels = np.zeros((10, 12, 3), np.uint8)
    entries = [caption_image_entry(pixels, "a dog a cat", ["a", "dog", "a", "cat"], {"cross-attention": maps[0]}),
               caption_image_entry(pixels, "a cat", ["a", "cat", "<end>"], {"cross-attention": maps[1, :3]})]
    write_explorer(folder / "shared.html", "caption", "shared words", [{"title": "A", "scores": None}] * 2,
                   [page_image("shared", entries)], layer=1)
    return {"path": folder / "page.html", "decoded": decoded, "shared": folder / "shared.html", "maps": maps}


def test_keyboard_alone_changes_word_layer_and_head(caption_page, open_page):
    page, requests, problems = open_page(caption_page["path"])
    assert len(requests) == 1 and problems == []
    attention = caption_page["decoded"][0].attention.double()  # (words, layers, heads, h, w)
    words = page.locator("#words-0 button")
    assert words.count() == len(attention) and page.locator("#words-0 .shown").count() == 0  # nothing chosen yet
    page.fill("#opacity", "100")
    layer = attention.shape[1] + p2_vis_caption.DEFAULT_LAYER
    assert page.text_content("#layer-label").startswith(f"{layer} of")
    tab_to(page, "#words-0 button")
    page.keyboard.press("ArrowRight")
    assert_draws(page, "map-0", attention[1, layer].mean(0).numpy())
    page.keyboard.press("Enter")  # pinned: it stays when the words lose the focus
    tab_to(page, "#words-1 button")
    page.keyboard.press("Shift+Tab")
    assert_draws(page, "map-0", attention[1, layer].mean(0).numpy())
    page.keyboard.press("[")
    page.keyboard.press(".")
    assert_draws(page, "map-0", attention[1, layer - 1, 0].numpy())
    tab_to(page, "#layer")
    page.keyboard.press("ArrowRight")
    tab_to(page, "#head")
    page.keyboard.press("ArrowDown")
    assert_draws(page, "map-0", attention[1, layer, 1].numpy())
    page.keyboard.press("Escape")
    assert page.locator("#words-0 .pinned").count() == 0
    assert_draws(page, "map-0", attention[0, layer, 1].numpy())  # the first word, shown by default


def test_compared_captioners_each_show_their_caption_beams_and_scores(caption_page, open_page):
    page, _, _ = open_page(caption_page["path"])
    for i, decoded in enumerate(caption_page["decoded"]):
        assert page.locator(f"#words-{i} button").count() == len(decoded.attention)
        rows = page.locator(f"#beams-{i} tr")
        assert [rows.nth(k + 1).locator("td").nth(2).text_content() for k in range(len(decoded.beams))] == \
            [f"{beam.score:.3f}" for beam in decoded.beams]
    layer = caption_page["decoded"][0].attention.shape[1] + p2_vis_caption.DEFAULT_LAYER
    assert f"attention@{layer}: correctness {10 + layer:.1f}" in page.text_content("#views")
    page.locator("h1").click()
    page.keyboard.press("[")
    assert f"attention@{layer - 1}: correctness {10 + layer - 1:.1f}" in page.text_content("#views")
    assert "uniform: correctness 5.00" in page.text_content("#other-scores")


def test_a_word_chosen_in_one_caption_shows_the_same_word_in_the_other(caption_page, open_page):
    page, _, problems = open_page(caption_page["shared"])
    page.fill("#opacity", "100")
    maps = caption_page["maps"].double()
    words = page.locator("#words-0 button")
    words.nth(3).click()  # "cat": word 1 of the other caption
    assert_draws(page, "map-0", maps[0, 3, 1].mean(0).numpy())
    assert_draws(page, "map-1", maps[1, 1, 1].mean(0).numpy())
    words.nth(1).click()  # "dog": not in the other caption
    assert "not in" in page.text_content("#map-caption-1")
    words.nth(2).click()  # the second "a": the other caption has one
    assert "not in" in page.text_content("#map-caption-1")
    page.locator("#words-1 button").nth(0).click()  # its "a": the first "a" here
    assert_draws(page, "map-0", maps[0, 0, 1].mean(0).numpy())
    assert [b.get_attribute("class") for b in page.locator("#words-1 button").all()][:2] == ["shared pinned shown"] * 1 + ["shared"]
    assert problems == []
