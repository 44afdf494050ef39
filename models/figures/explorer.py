"""Self-contained interactive HTML pages for the maps: one file that opens from disk with no network.

A page is the template `web/page.html` with its body, style and scripts inlined and the data embedded as
JSON in the page: images as raw RGB bytes and maps quantised to 8 bits, both base64-encoded. Each map
of h x w values keeps its own range: codes round((v - lo) / (hi - lo) * 255) with lo and hi the map's
minimum and maximum, so a value comes back within (hi - lo) / 510 of itself and the page, which colours
each map by its own range, draws the colour numpy would draw from the float map (`render_map`).

A page shows one model, or two side by side driven by one set of controls (`--compare`): its data
lists the models and, per image, each model's entry.

- `vit_model_entry`, `vit_image_entry`: a model and its maps of one image for the ViT page (problem
  1): the [class] row per layer and head, what every patch attends to per layer (per head too where
  the rows fit `HEAD_ROWS_BUDGET`), rollout per layer, every other map method for the top classes,
  head importance; the model's position-embedding similarity;
- `caption_image_entry`: a captioner's caption of one image, its named sets of word maps, its beams
  and head importance (problem 2);
- `page_image`, `write_explorer`: an image's entries together, the page written atomically.
"""
import base64
import html
import json
import re
from pathlib import Path

import matplotlib
import numpy as np
import torch

from data.io import UserError, write_text_atomic
from data.outputs import check_output_file
from models.figures.scores import read_scores
from models.explain.maps import class_row_map, fuse_heads, head_maps, layer_rollouts, patch_row_maps

LEVELS = 255  # codes 0..255
MAP_CMAP = "jet"  # as the PNG figures
SIMILARITY_CMAP = "viridis"  # as the position-embedding figure
# Per-head rows of every patch are layers x heads x patches^2 bytes (127 MB for ViT-L/16 at 384): they
# are embedded only up to this size, the mean over heads always.
HEAD_ROWS_BUDGET = 4 * 2**20
WEB = Path(__file__).with_name("web")
KINDS = ("vit", "caption")


def check_html_path(path, flag: str = "--html", inputs=()) -> Path:
    """Refuse, before any work, a page path that does not end in .html or cannot be written
    (`data.outputs.check_output_file`); its folder is created when missing, as --out_dir is."""
    path = Path(path)
    if path.suffix.lower() != ".html":
        raise UserError(f"{flag} {path}: the page must be a file ending in .html")
    return check_output_file(path, flag, inputs)


def check_page_flags(args, compare_is_file: bool = True) -> None:
    """--compare and --scores, before any work: only with --html, at most one scores file a model,
    every file named there (the compared model's where `compare_is_file`), each scores file readable."""
    if args.html is None and (args.compare or args.scores):
        raise UserError("--compare and --scores apply to the page: pass --html FILE")
    if args.scores and len(args.scores) > 1 + bool(args.compare):
        raise UserError(f"--scores takes one FILE{', or two with --compare' * (not args.compare)}")
    for path in [args.compare if compare_is_file else None, *(args.scores or [])]:
        if path and not Path(path).is_file():
            raise UserError(f"file not found: {path}")
    for path in args.scores or []:
        read_scores(path)


def _b64(array: np.ndarray) -> str:
    """Base64 of the array's bytes, little-endian as the page's typed arrays read them."""
    array = np.ascontiguousarray(array)
    return base64.b64encode(array.astype(array.dtype.newbyteorder("<")).tobytes()).decode("ascii")


def quantize_maps(maps) -> dict:
    """(..., h, w) float maps -> {"shape", "codes", "lo", "hi"}: uint8 codes, per-map float32 range."""
    values = torch.as_tensor(maps).detach().float().cpu()
    flat = values.reshape(-1, values.shape[-2] * values.shape[-1])
    lo, hi = flat.amin(dim=1, keepdim=True), flat.amax(dim=1, keepdim=True)
    span = (hi - lo).where(hi > lo, torch.ones_like(hi))  # a constant map: every code 0
    codes = ((flat - lo) / span * LEVELS).round().clamp(0, LEVELS).to(torch.uint8)
    return {"shape": list(values.shape), "codes": _b64(codes.numpy()),
            "lo": _b64(lo.squeeze(1).numpy()), "hi": _b64(hi.squeeze(1).numpy())}


def colour_table(cmap: str) -> np.ndarray:
    """(256, 3) uint8: the colormap's colour for each code, as matplotlib draws it."""
    return matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, LEVELS + 1), bytes=True)[:, :3]


def colour_codes(values, value_range=None) -> np.ndarray:
    """The colour code 0..255 of each value: its place in `value_range` (lo, hi), by default the
    values' own minimum and maximum, as the page computes it."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi = value_range if value_range is not None else (values.min(), values.max())
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.int64)
    return np.clip(np.rint((values - lo) / (hi - lo) * LEVELS), 0, LEVELS).astype(np.int64)


def render_map(values, cmap: str = MAP_CMAP, value_range=None) -> np.ndarray:
    """(h, w) map -> (h, w, 3) uint8: the colours the page gives its cells at full opacity."""
    return colour_table(cmap)[colour_codes(values, value_range)]


def _rgb(image) -> dict:
    pixels = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, dtype=np.uint8)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {pixels.shape}")
    return {"size": list(pixels.shape[:2]), "rgb": _b64(pixels)}


def vit_model_entry(title: str, grid: tuple, layers: int, heads: int, similarity, scores=None) -> dict:
    """What the ViT page knows of one model: its shape, the (P, P) cosine matrix of its patch position
    embeddings, and the scores of its maps (`models.figures.scores.read_scores`) or None."""
    patches = grid[0] * grid[1]
    return {"title": title, "grid": list(grid), "layers": layers, "heads": heads, "scores": scores,
            "similarity": quantize_maps(torch.as_tensor(similarity).reshape(patches, *grid))}  # (P, gh, gw)


def vit_image_entry(image, attentions: list, top_classes: list, methods: list, grid: tuple, importance=None,
                    head_rows_budget: int = HEAD_ROWS_BUDGET) -> dict:
    """One model's data for one image on the ViT page.

    `image`: (H, W, 3) uint8, the input as the model saw it; `attentions`: per layer (heads, N, N);
    `top_classes`: (index, name, probability), most probable first; `methods`: the maps of the map
    methods the page draws besides attention, each {"name", "maps": (K, gh, gw), one per top class or
    (1, gh, gw), "captions": one per map}; `importance`: (layers, heads) head importance or None.
    """
    layers, heads = len(attentions), attentions[0].shape[0]
    patches = grid[0] * grid[1]
    with_heads = layers * heads * patches * patches <= head_rows_budget
    cls_rows, patch_rows, means = [], [], []
    for scores in attentions:
        scores = scores.float()
        mean = fuse_heads(scores)
        means.append(mean[None])  # one head: rollout needs no second mean
        cls_rows.append(torch.cat([class_row_map(mean, grid)[None], head_maps(scores, grid)]))
        rows = patch_row_maps(mean, grid)[None]
        patch_rows.append(torch.cat([rows, patch_row_maps(scores, grid)]) if with_heads else rows)
    rollout = torch.stack([class_row_map(r, grid) for r in layer_rollouts(means)])
    for method in methods:
        if len(method["captions"]) != method["maps"].shape[0]:
            raise ValueError(f"{method['name']}: {method['maps'].shape[0]} maps for {len(method['captions'])} captions")
    return {
        **_rgb(image),
        "classes": [{"index": int(k), "name": str(label), "prob": float(p)} for k, label, p in top_classes],
        "cls": quantize_maps(torch.stack(cls_rows)),  # (layers, 1 + heads, gh, gw), the mean first
        "rows": quantize_maps(torch.stack(patch_rows)),  # (layers, 1 [+ heads], P, gh, gw)
        "rollout": quantize_maps(rollout),  # (layers, gh, gw): rollout through layers 0..l
        "methods": [{"name": m["name"], "captions": list(m["captions"]), "maps": quantize_maps(m["maps"])}
                    for m in methods],
        "importance": _importance(importance),
    }


def _importance(importance):
    return None if importance is None else torch.as_tensor(importance).float().tolist()


def word_map_set(name: str, maps) -> dict:
    """A named set of word maps for the caption page: (words, layers, heads, h, w) attention, stored
    with the mean over heads as head 0, or (words, h, w) maps of one method over all layers."""
    maps = torch.as_tensor(maps).float()
    if maps.dim() == 3:
        return {"name": name, "layers": ["all"], "heads": ["-"], "maps": quantize_maps(maps[:, None, None])}
    if maps.dim() != 5:
        raise ValueError(f"word maps must be (words, h, w) or (words, layers, heads, h, w), got {tuple(maps.shape)}")
    with_mean = torch.cat([maps.mean(dim=2, keepdim=True), maps], dim=2)
    return {"name": name, "layers": [str(i) for i in range(maps.shape[1])],
            "heads": ["mean"] + [str(i) for i in range(maps.shape[2])], "maps": quantize_maps(with_mean)}


def caption_image_entry(image, caption: str, words: list, map_sets: dict, beams: list = (), importance=None) -> dict:
    """One captioner's data for one image on the caption page.

    `image`: the RGB image the captioner read (PIL or (H, W, 3) uint8); `words`: the label of each
    map (the WordPiece tokens, then <end>); `map_sets`: name -> maps of `word_map_set`'s shapes, one per
    word; `beams`: (caption, score, normalised score) of every finished beam, the chosen one first;
    `importance`: (decoder layers, heads) importance of the cross-attention heads, or None.
    """
    sets = [word_map_set(set_name, maps) for set_name, maps in map_sets.items()]
    for entry in sets:
        if entry["maps"]["shape"][0] != len(words):
            raise ValueError(f"{entry['name']}: {entry['maps']['shape'][0]} maps for {len(words)} words")
    return {**_rgb(image), "caption": caption, "words": list(words), "sets": sets,
            "beams": [{"caption": text, "score": float(score), "normalized": float(normalized)}
                      for text, score, normalized in beams],
            "importance": _importance(importance)}


def page_image(name: str, per_model: list) -> dict:
    """One image of a page: its name and each model's entry for it; a model that saw the same pixels
    as the first keeps no copy of them (the page draws the first's)."""
    first = per_model[0]
    models = [first] + [{k: v for k, v in entry.items() if k not in ("size", "rgb")}
                        if (entry["size"], entry["rgb"]) == (first["size"], first["rgb"]) else entry
                        for entry in per_model[1:]]
    return {"name": name, "models": models}


def _json_for_script(data) -> str:
    """JSON that cannot end the <script> element holding it (a file name may contain '</script>')."""
    return json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")


def explorer_html(kind: str, title: str, models: list, images: list, **page) -> str:
    """The page text: the template with the style, the scripts and the data inlined. `models`: one
    entry per model compared (`vit_model_entry`, or {"title", "scores"} for a captioner), `images`:
    `page_image`s; `page`: more page-wide data (the ViT page's "methods", the caption page's "layer")."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    for image in images:
        if len(image["models"]) != len(models):
            raise ValueError(f"{image['name']}: {len(image['models'])} entries for {len(models)} models")
    data = {"kind": kind, "title": title, "levels": LEVELS, "models": models, "images": images, **page,
            "colours": {"map": _b64(colour_table(MAP_CMAP)), "similarity": _b64(colour_table(SIMILARITY_CMAP))}}
    parts = {"TITLE": html.escape(title), "STYLE": _web("explorer.css"), "BODY": _web(f"{kind}.html"),
             "SCRIPT": _web("core.js") + _web(f"{kind}.js"), "DATA": _json_for_script(data)}
    # one pass, so that text put in (a file name, say) is never read as a placeholder
    return re.sub(r"@@([A-Z]+)@@", lambda match: parts[match.group(1)], _web("page.html"))


def _web(name: str) -> str:
    return (WEB / name).read_text(encoding="utf-8")


def write_explorer(path, kind: str, title: str, models: list, images: list, **page) -> int:
    """Write the page atomically; returns its size in bytes."""
    text = explorer_html(kind, title, models, images, **page)
    write_text_atomic(path, text)
    return len(text.encode("utf-8"))
