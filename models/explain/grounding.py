"""Whether a word's map points at the object the word names: pure functions of maps and masks.

- `attention_correctness` (Liu, Mao, Sha & Yuille, AAAI 2017): the share of the map's mass, upsampled
  to the image, that lies inside the object; a uniform map scores the object's area share.
- `pointing_hits` (Zhang et al., ECCV 2016): whether the map's maximum lies within `tolerance` pixels
  of the object (15 in the paper). Where several pixels share the maximum, the peak is their mean
  position: for a uniform map, the image centre (the paper's centre baseline).
- The deletion test: `deletion_masks` removes 0%, 10%, ..., 90% of the cells in the map's order (the
  same order and counts as problem 1's perturbation test); the caller re-scores the word with those
  cells hidden and `relative_probability` compares it with the intact image.
- `summarize` averages per category, then over categories.

Maps are (N, h, w) over the feature grid; masks (H, W) booleans at the image's pixels. Upsampling is
bilinear without corner alignment, as the figures draw the maps: the grid is stretched over the image.
"""
import math

import torch
import torch.nn.functional as F

from .faithfulness import FRACTIONS, curve_auc, patches_to_remove, removal_order

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


def _mean(values: list):
    return sum(values) / len(values) if values else None


def summarize(words: list, methods: list, fractions=FRACTIONS) -> dict:
    """Per method, each score averaged per category, then over categories.

    `words`: one dict per graded word, {"category": name, "methods": {method: {"correctness": float,
    "pointing": bool, "deletion_most": [F floats] or None, "deletion_least": ...}}}. Correctness and
    the pointing game are given in %, the deletion curves as shares of the intact probability and
    their areas (`curve_auc`) in % of the span; a method without deletion curves gets None there.
    """
    categories = sorted({word["category"] for word in words})
    summary = {}
    for method in methods:
        per_category = {key: [] for key in ("correctness", "pointing", "deletion_most", "deletion_least")}
        for category in categories:
            scores = [word["methods"][method] for word in words if word["category"] == category]
            per_category["correctness"].append(_mean([s["correctness"] for s in scores]))
            per_category["pointing"].append(_mean([float(s["pointing"]) for s in scores]))
            for key in ("deletion_most", "deletion_least"):
                curves = [s[key] for s in scores if s.get(key) is not None]
                if curves:
                    per_category[key].append([_mean(list(column)) for column in zip(*curves)])
        result = {"correctness": _percent(_mean(per_category["correctness"])),
                  "pointing_game": _percent(_mean(per_category["pointing"]))}
        for key, auc in (("deletion_most", "deletion_most_auc"), ("deletion_least", "deletion_least_auc")):
            curves = per_category[key]
            curve = [_mean(list(column)) for column in zip(*curves)] if curves else None
            result[auc] = round(curve_auc(curve, fractions), 2) if curve else None
            result[f"{key}_curve"] = [round(value, 4) for value in curve] if curve else None
        summary[method] = result
    return summary


def _percent(value):
    return None if value is None else round(100 * value, 2)
