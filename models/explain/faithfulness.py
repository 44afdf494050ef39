"""How far to trust a map: perturbation tests and localisation scores, as pure tensor functions.

- Perturbation: remove a growing share of the patches in the map's order and ask the model again.
  The removed pixels are filled with a constant (`Removal("grey")`) or imputed from the pixels kept
  by ROAD's noisy linear imputation (`Removal("road")`), which leaves no square for the model to
  react to. `perturbation_scores` records, at 0%, 10%, ..., 100% removed in both orders, whether the
  model keeps the target class and the target's probability; `image_measures` turns that into each
  image's areas: the positive and negative tests of Chefer, Gur & Wolf (CVPR 2021: the share of
  predictions kept, 0-90% removed) and the deletion and insertion tests of Petsiuk, Das & Saenko
  (RISE, BMVC 2018: the target's probability). Areas are in % of the span.
- Localisation, against an object mask: the pointing game (is the map's highest patch on the
  object?), the energy-based pointing game (Wang et al., Score-CAM, CVPR-W 2020: the share of the
  map's positive mass on the object, chance being the object's area share), and the IoU between the
  object's patches and as many of the map's top patches.
- `random_maps`: the baseline every method must beat, fixed by a seed and the image's index.

Maps are (B, gh, gw) with patch (r, c) at row r, column c of the model's grid. Every measure is given
per image, so that `statistics` can put an interval on its mean.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .road import noisy_linear_imputation
from .statistics import interval_text

FRACTIONS = tuple(i / 10 for i in range(10))  # the positive and negative tests: 0%, 10%, ..., 90% removed
FULL_FRACTIONS = tuple(i / 10 for i in range(11))  # deletion and insertion: 0%, 10%, ..., 100%
OBJECT_COVERAGE = 0.5  # a patch belongs to the object when at least half its pixels do
REMOVALS = ("grey", "road")
RANDOM_SEEDS = 5  # random maps per image: the baseline is their mean


def random_maps(indices, grid, seed: int = 0) -> torch.Tensor:
    """(B, gh, gw) uniform random maps, each fixed by (`seed`, the image's index in the data set),
    so the same image gets the same map whatever the batch size or order."""
    gh, gw = grid
    maps = [torch.rand(gh, gw, generator=torch.Generator().manual_seed(seed * 1_000_003 + int(i)))
            for i in indices]
    return torch.stack(maps)


def removal_order(maps: torch.Tensor, most_relevant_first: bool) -> torch.Tensor:
    """(B, gh * gw) patch indices (r * gw + c), in the order a perturbation test removes them."""
    return maps.flatten(1).argsort(dim=1, descending=most_relevant_first, stable=True)


def patches_to_remove(fraction: float, num_patches: int) -> int:
    return round(fraction * num_patches)


def removed_pixels(order: torch.Tensor, count: int, patch, size) -> torch.Tensor:
    """(B, H, W) booleans, True on the pixels of the first `count` patches of each row of `order`.

    Pixels beyond the last whole patch (which the patch embedding never sees) are never removed.
    """
    (ph, pw), (h, w) = patch, size
    gh, gw = h // ph, w // pw
    removed = torch.zeros(len(order), gh * gw, dtype=torch.bool, device=order.device)
    removed.scatter_(1, order[:, :count], True)
    pixels = removed.view(-1, gh, gw).repeat_interleave(ph, 1).repeat_interleave(pw, 2)
    return F.pad(pixels, (0, w - gw * pw, 0, h - gh * ph))


def remove_patches(images: torch.Tensor, order: torch.Tensor, count: int, patch, value: float = 0.0):
    """`images` (B, C, H, W) with the first `count` patches of each row of `order` set to `value`."""
    removed = removed_pixels(order.to(images.device), count, patch, images.shape[-2:])
    return images.masked_fill(removed[:, None], value)


@dataclass(frozen=True)
class Removal:
    """How the pixels of removed patches are replaced: `grey`, the constant `fill` in normalised units
    (0: mid-grey for mean = std = 0.5), or `road`, ROAD's noisy linear imputation from the pixels
    kept (`road.noisy_linear_imputation`; `generator` draws its noise)."""

    kind: str = "grey"
    fill: float = 0.0
    generator: torch.Generator | None = None

    def __post_init__(self):
        if self.kind not in REMOVALS:
            raise ValueError(f"removal must be one of {REMOVALS}, not {self.kind!r}")

    def apply(self, images: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
        """`images` (B, C, H, W) with the pixels where `removed` (B, H, W) is True replaced."""
        if self.kind == "grey":
            return images.masked_fill(removed[:, None], self.fill)
        return noisy_linear_imputation(images, removed, generator=self.generator)


@torch.no_grad()
def perturbation_scores(model, images, maps, targets, removal: Removal = Removal(),
                        intact_logits=None) -> dict:
    """What `model` (in eval mode) says of `targets` as the patches go in the maps' order.

    Returns (B, len(FULL_FRACTIONS)) tensors: for each share of the patches removed, most relevant
    first (`kept_most`, `probability_most`) and least relevant first (`kept_least`,
    `probability_least`), whether the model still predicts the target and the target's softmax
    probability. Removing nothing is the intact image (`intact_logits` when already computed), and
    removing every patch is the same image in both orders: it is computed once.
    """
    patch = model.patch_embedding.kernel_size
    if intact_logits is None:
        intact_logits = model(images)
    columns = {key: [] for key in ("kept_most", "probability_most", "kept_least", "probability_least")}
    everything = None
    for most_relevant_first in (True, False):
        order = removal_order(maps, most_relevant_first)
        suffix = "most" if most_relevant_first else "least"
        for fraction in FULL_FRACTIONS:
            count = patches_to_remove(fraction, order.shape[1])
            if count == 0:
                logits = intact_logits
            elif count == order.shape[1] and everything is not None:
                logits = everything
            else:
                removed = removed_pixels(order, count, patch, images.shape[-2:])
                logits = model(removal.apply(images, removed))
                everything = logits if count == order.shape[1] else everything
            probabilities = logits.float().softmax(dim=-1)
            columns[f"kept_{suffix}"].append(logits.argmax(dim=-1) == targets)
            columns[f"probability_{suffix}"].append(probabilities.gather(1, targets[:, None].long())[:, 0])
    return {key: torch.stack(value, dim=1) for key, value in columns.items()}


def perturbation_curves(model, images, maps, targets, most_relevant_first: bool,
                        fractions=FRACTIONS, value: float = 0.0) -> torch.Tensor:
    """(B, len(fractions)) booleans: whether `model` still predicts `targets` after removing each
    fraction of the patches in the maps' order, their pixels set to `value` (the positive and
    negative tests of Chefer et al.)."""
    scores = perturbation_scores(model, images, maps, targets, Removal("grey", value))
    kept = scores["kept_most" if most_relevant_first else "kept_least"]
    return kept[:, [FULL_FRACTIONS.index(f) for f in fractions]]


def curve_auc(curve, fractions=FRACTIONS) -> float:
    """Area under a curve of shares in [0, 1] over `fractions`, by trapezoids, in % of the span:
    100 when the prediction always stayed, 0 when it never did beyond the first point."""
    return float(curve_areas(torch.as_tensor(curve, dtype=torch.float64)[None], fractions)[0])


def curve_areas(curves: torch.Tensor, fractions) -> torch.Tensor:
    """(B,) `curve_auc` of each row of (B, len(fractions)) curves."""
    x = torch.as_tensor(fractions, dtype=torch.float64)
    return 100.0 * torch.trapezoid(curves.double().cpu(), x, dim=-1) / (x[-1] - x[0])


def image_measures(scores: dict) -> dict:
    """Each image's perturbation measures from `perturbation_scores`, in %, and its curves.

    - positive_auc / negative_auc: the share of predictions kept, 0-90% removed, most (least)
      relevant first (Chefer et al.); lower (higher) is better.
    - deletion_auc: the target's probability as 0-100% of the patches go, most relevant first
      (Petsiuk, Das & Saenko, RISE, BMVC 2018); lower is better.
    - insertion_auc: the target's probability as 0-100% of the patches come back into the fully
      removed image, most relevant first; higher is better. Inserting the top share f is removing
      the bottom 1 - f, so the curve is the least-relevant-first probabilities read backwards.
    """
    tests = [FULL_FRACTIONS.index(f) for f in FRACTIONS]
    curves = {"positive_curve": scores["kept_most"][:, tests].double(),
              "negative_curve": scores["kept_least"][:, tests].double(),
              "deletion_curve": scores["probability_most"].double(),
              "insertion_curve": scores["probability_least"].double().flip(1)}
    measures = {"positive_auc": curve_areas(curves["positive_curve"], FRACTIONS),
                "negative_auc": curve_areas(curves["negative_curve"], FRACTIONS),
                "deletion_auc": curve_areas(curves["deletion_curve"], FULL_FRACTIONS),
                "insertion_auc": curve_areas(curves["insertion_curve"], FULL_FRACTIONS)}
    return {**measures, **{key: value.cpu() for key, value in curves.items()}}


def object_shares(mask: torch.Tensor, grid) -> torch.Tensor:
    """An (H, W) object mask (non-zero = object) as the (gh, gw) share of each patch's pixels on it.

    The eval transform resizes the whole image to the model's square input, so patch (r, c) is
    cell (r, c) of a gh x gw division of the original image.
    """
    return F.adaptive_avg_pool2d(mask.float()[None, None].ne(0).float(), tuple(grid))[0, 0]


def grid_mask(mask: torch.Tensor, grid, coverage: float = OBJECT_COVERAGE) -> torch.Tensor:
    """The (gh, gw) boolean mask of the object's patches: at least `coverage` of their pixels."""
    return object_shares(mask, grid) >= coverage


def pointing_game(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(B,) booleans: the map's highest patch lies on the object ((B, gh, gw) boolean masks)."""
    top = maps.flatten(1).argmax(dim=1, keepdim=True)
    return masks.flatten(1).gather(1, top)[:, 0]


def energy_pointing_game(maps: torch.Tensor, shares: torch.Tensor) -> torch.Tensor:
    """(B,) the share of each map's positive mass on the object, `shares` (B, gh, gw) being the
    object's share of each patch: the pixel-level energy of the map drawn as blocks. A map without
    positive mass says nothing: it scores the object's area share, the level of chance."""
    positive = maps.clamp(min=0).double().flatten(1)
    shares = shares.double().flatten(1).to(positive.device)
    total = positive.sum(dim=1)
    inside = (positive * shares).sum(dim=1)
    return torch.where(total > 0, inside / total.where(total > 0, torch.ones_like(total)), shares.mean(dim=1))


def top_patch_iou(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(B,) IoU between the object's k patches and the map's k highest patches (k per image)."""
    flat_masks = masks.flatten(1)
    k = flat_masks.sum(dim=1)
    rank = maps.flatten(1).argsort(dim=1, descending=True, stable=True).argsort(dim=1)
    top = rank < k[:, None]
    inter = (top & flat_masks).sum(dim=1).double()
    union = (top | flat_masks).sum(dim=1).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))


def localisation_measures(maps: torch.Tensor, shares: torch.Tensor) -> dict:
    """Each image's localisation measures in %, from (B, gh, gw) maps and object shares."""
    masks = (shares >= OBJECT_COVERAGE).to(maps.device)
    return {"pointing_game": 100.0 * pointing_game(maps, masks).double().cpu(),
            "energy": 100.0 * energy_pointing_game(maps, shares).cpu(),
            "iou": 100.0 * top_patch_iou(maps, masks).cpu()}


PERTURBATION_MEASURES = ("positive_auc", "negative_auc", "deletion_auc", "insertion_auc")
LOCALISATION_MEASURES = ("pointing_game", "energy", "iou")
HIGHER_IS_BETTER = {"positive_auc": False, "negative_auc": True, "deletion_auc": False, "insertion_auc": True,
                    "pointing_game": True, "energy": True, "iou": True}
CURVES = ("positive_curve", "negative_curve", "deletion_curve", "insertion_curve")


class ImageScores:
    """Each method's per-image measures, batch after batch, in the order the images came."""

    def __init__(self):
        self.batches = {}

    def add(self, method: str, measures: dict) -> None:
        for key, value in measures.items():
            self.batches.setdefault(method, {}).setdefault(key, []).append(value.double().cpu())

    def tensors(self) -> dict:
        """{method: {measure or curve: (N,) or (N, points)}}."""
        return {method: {key: torch.cat(parts) for key, parts in measures.items()}
                for method, measures in self.batches.items()}


def mean_measures(per_map: list) -> dict:
    """The element-wise mean of several maps' measures of the same images (the random seeds)."""
    return {key: torch.stack([m[key] for m in per_map]).mean(dim=0) for key in per_map[0]}


SHORT_NAMES = {"positive_auc": "positive", "negative_auc": "negative", "deletion_auc": "deletion",
               "insertion_auc": "insertion", "pointing_game": "pointing", "energy": "energy", "iou": "IoU"}


def standing(scores: dict, baseline: str = "random") -> str:
    """Which measures a method beats and loses to the baseline on, by the intervals of the differences."""
    verdicts = scores.get(f"against_{baseline}", {})
    words = []
    for verdict in ("beats", "loses"):
        names = [SHORT_NAMES[m] for m, v in verdicts.items() if v["verdict"] == verdict]
        if names:
            words.append(f"{verdict} it in {', '.join(names)}")
    return "; ".join(words) or "no clear difference"


def faithfulness_table(summary: dict) -> str:
    """A Markdown table of the scores with their 95% intervals, one row per method, with its standing
    against random (only differences whose interval excludes 0 count)."""
    measures = [m for m in HIGHER_IS_BETTER if any(s.get(m) is not None for s in summary.values())]
    lines = ["| method | " + " | ".join(f"{SHORT_NAMES[m]} ({'higher' if HIGHER_IS_BETTER[m] else 'lower'} "
                                          "is better)" for m in measures) + " | against random |",
             "|---|" + "---|" * (len(measures) + 1)]
    for method, s in summary.items():
        cells = [interval_text(s.get(m), s.get(f"{m}_ci95")) for m in measures]
        against = "(the baseline)" if method == "random" else standing(s)
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {against} |")
    return "\n".join(lines)
