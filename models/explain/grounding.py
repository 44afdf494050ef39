"""Whether a word's map points at the object the word names: pure functions of maps and masks.

- `attention_correctness` (Liu, Mao, Sha & Yuille, AAAI 2017): the share of the map's mass, upsampled
  to the image, that lies inside the object; a uniform map scores the object's area share.
- `pointing_hits` (Zhang et al., ECCV 2016): whether the map's maximum lies within `tolerance` pixels
  of the object (15 in the paper). Where several pixels share the maximum, the peak is their mean
  position: for a uniform map, the image centre (the paper's centre baseline). `cell_tolerance`, half
  a feature cell in image pixels, scales with the image where a fixed 15 px covers a third of a small
  one (about 17 px on a 640-px COCO image seen by CATR at 299 px, 8 px on a 96-px scene).
- The deletion test: `deletion_masks` removes 0%, 10%, ..., 90% of the cells in the map's order (the
  same order and counts as problem 1's perturbation test); the caller re-scores the word with those
  cells hidden and `relative_probability` compares it with the intact image.
- `word_measures` gives each graded word's measures in %, and `summarize` their means per category,
  then over categories, with bootstrap intervals over the words (drawn within each category).

Maps are (N, h, w) over the feature grid; masks (H, W) booleans at the image's pixels. Upsampling is
bilinear without corner alignment, as the figures draw the maps: the grid is stretched over the image.
"""
import math

import torch
import torch.nn.functional as F

from .faithfulness import FRACTIONS, curve_areas, patches_to_remove, removal_order
from .statistics import RESAMPLES, estimate, summarize_measures

POINTING_TOLERANCE = 15  # pixels, Zhang et al. 2016


def upsample(maps: torch.Tensor, size) -> torch.Tensor:
    """(N, h, w) -> (N, H, W), bilinear, values kept (not rescaled as for display)."""
    return F.interpolate(maps[:, None].float(), size=tuple(size), mode="bilinear", align_corners=False)[:, 0]


def attention_correctness(maps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N,) share of each (N, H, W) non-negative map's mass on the (H, W) mask. A map without mass
    says nothing: it is read as uniform, so it scores the mask's area share."""
    maps = maps.clamp(min=0).double()
    total = maps.flatten(1).sum(dim=1)
    inside = (maps * mask.to(maps.device)).flatten(1).sum(dim=1)
    area = mask.double().mean().to(maps.device)
    return torch.where(total > 0, inside / total.where(total > 0, torch.ones_like(total)), area)


def cell_tolerance(grid, size) -> float:
    """Half a feature cell in image pixels: `grid` (h, w) cells stretched over an image of `size` (H, W)."""
    return 0.5 * max(size[0] / grid[0], size[1] / grid[1])


def peaks(maps: torch.Tensor) -> torch.Tensor:
    """(N, 2) row and column of each (N, H, W) map's maximum; the mean position of ties."""
    flat = maps.flatten(1)
    at_max = flat == flat.max(dim=1, keepdim=True).values
    rows = torch.arange(maps.shape[1], device=maps.device).repeat_interleave(maps.shape[2]).double()
    cols = torch.arange(maps.shape[2], device=maps.device).repeat(maps.shape[1]).double()
    count = at_max.sum(dim=1).double()
    return torch.stack(((at_max * rows).sum(dim=1) / count, (at_max * cols).sum(dim=1) / count), dim=1)


def pointing_hits(maps: torch.Tensor, mask: torch.Tensor, tolerance: float = POINTING_TOLERANCE) -> torch.Tensor:
    """(N,) booleans: the peak of each (N, H, W) map lies within `tolerance` pixels of the (H, W) mask
    (Euclidean distance from the peak's pixel to the nearest mask pixel)."""
    mask = mask.bool().cpu()
    height, width = mask.shape
    reach = int(math.floor(tolerance))
    hits = []
    for row, col in peaks(maps).round().long().tolist():
        top, left = max(row - reach, 0), max(col - reach, 0)
        window = mask[top: row + reach + 1, left: col + reach + 1]
        dy = torch.arange(top, top + window.shape[0])[:, None] - row
        dx = torch.arange(left, left + window.shape[1])[None, :] - col
        hits.append(bool((window & (dy ** 2 + dx ** 2 <= tolerance ** 2)).any()))
    return torch.tensor(hits, dtype=torch.bool)


def deletion_masks(maps: torch.Tensor, most_relevant_first: bool, fractions=FRACTIONS) -> torch.Tensor:
    """(N, F, h*w) booleans, True on the cells removed at each fraction, in the maps' order (ties in
    row-major order); the first fraction of 0 removes nothing."""
    order = removal_order(maps, most_relevant_first)
    removed = torch.zeros(len(maps), len(fractions), order.shape[1], dtype=torch.bool, device=maps.device)
    for index, fraction in enumerate(fractions):
        count = patches_to_remove(fraction, order.shape[1])
        removed[:, index].scatter_(1, order[:, :count], True)
    return removed


def relative_probability(log_probs: torch.Tensor, intact: torch.Tensor) -> torch.Tensor:
    """p(word | cells removed) / p(word | intact image) from log-probabilities (..., F) and (...,)."""
    return (log_probs.double() - intact.double()[..., None]).exp()


HIGHER_IS_BETTER = {"correctness": True, "pointing_game": True, "pointing_game_scaled": True,
                    "deletion_most_auc": False, "deletion_least_auc": True}
LOCATION_MEASURES = ("correctness", "pointing_game", "pointing_game_scaled")
DELETION = {"deletion_most_auc": "deletion_most", "deletion_least_auc": "deletion_least"}


def word_measures(words: list, methods: list, fractions=FRACTIONS) -> tuple:
    """({method: {measure: (n,) per word in %, curve key: (n, F)}}, (n,) category index per word).

    `words`: one dict per graded word, {"category": name, "methods": {method: {"correctness": float,
    "pointing": bool, "pointing_scaled": bool, "deletion_most": [F floats] or None, "deletion_least":
    ...}}}. A measure missing from some word (a cache written before it existed) is left out for all.
    """
    categories = sorted({word["category"] for word in words})
    strata = torch.tensor([categories.index(word["category"]) for word in words])
    per_item = {}
    for method in methods:
        scores = [word["methods"][method] for word in words]
        measures = {}
        for measure, key in (("correctness", "correctness"), ("pointing_game", "pointing"),
                             ("pointing_game_scaled", "pointing_scaled")):
            if all(s.get(key) is not None for s in scores):
                measures[measure] = 100.0 * torch.tensor([float(s[key]) for s in scores], dtype=torch.float64)
        for measure, key in DELETION.items():
            if all(s.get(key) is not None for s in scores):
                curves = torch.tensor([s[key] for s in scores], dtype=torch.float64)
                measures[measure], measures[f"{key}_curve"] = curve_areas(curves, fractions), curves
        per_item[method] = measures
    return per_item, strata


def summarize(words: list, methods: list, fractions=FRACTIONS, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """Per method, each measure's mean per category, then over categories, in %, with its 95%
    interval over the words, and its paired difference from `uniform` (localisation) and `random`
    (deletion) where those are measured; the deletion curves as shares of the intact probability.
    A measure no word has is None."""
    per_item, strata = word_measures(words, methods, fractions)
    location = {m: HIGHER_IS_BETTER[m] for m in LOCATION_MEASURES}
    deletion = {m: HIGHER_IS_BETTER[m] for m in DELETION}
    summary = summarize_measures(per_item, location, "uniform", resamples, seed, strata)
    for method, scores in summarize_measures(per_item, deletion, "random", resamples, seed, strata).items():
        summary[method].update(scores)
    for method in methods:
        for measure in HIGHER_IS_BETTER:
            summary[method].setdefault(measure, None)
        for key in DELETION.values():
            curves = per_item[method].get(f"{key}_curve")
            summary[method][f"{key}_curve"] = (None if curves is None else
                                               [round(float(v), 4) for v in estimate(curves.T, strata)])
    return summary
