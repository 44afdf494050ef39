"""How far to trust a map: perturbation tests and localisation scores, as pure tensor functions.

- Perturbation (Chefer, Gur & Wolf, CVPR 2021): remove a growing fraction of the patches in the
  map's order, replacing their pixels by a constant (0 in normalised units by default), and record
  whether the model still predicts the class it predicted on the intact image. Positive test: the
  most relevant patches go first (a faithful map makes the prediction fall fast: lower is better).
  Negative test: the least relevant go first (higher is better). The area under the curve is given
  in %, 100 meaning the prediction always stayed.
- Localisation, against an object mask: the pointing game (is the map's highest patch on the
  object?) and the IoU between the object's patches and as many of the map's top patches.
- `random_maps`: the baseline every method must beat, fixed by a seed and the image's index.

Maps are (B, gh, gw) with patch (r, c) at row r, column c of the model's grid.
"""
import torch
import torch.nn.functional as F


FRACTIONS = tuple(i / 10 for i in range(10))  # 0%, 10%, ..., 90% of the patches removed
OBJECT_COVERAGE = 0.5  # a patch belongs to the object when at least half its pixels do


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


def remove_patches(images: torch.Tensor, order: torch.Tensor, count: int, patch, value: float = 0.0):
    """`images` (B, C, H, W) with the first `count` patches of each row of `order` set to `value`.

    Pixels beyond the last whole patch (which the patch embedding never sees) are left alone.
    """
    b, _, h, w = images.shape
    ph, pw = patch
    gh, gw = h // ph, w // pw
    removed = torch.zeros(b, gh * gw, dtype=torch.bool, device=images.device)
    removed.scatter_(1, order[:, :count].to(images.device), True)
    pixels = removed.view(b, gh, gw).repeat_interleave(ph, 1).repeat_interleave(pw, 2)
    pixels = F.pad(pixels, (0, w - gw * pw, 0, h - gh * ph))[:, None]
    return images.masked_fill(pixels, value)


@torch.no_grad()
def perturbation_curves(model, images, maps, targets, most_relevant_first: bool,
                        fractions=FRACTIONS, value: float = 0.0) -> torch.Tensor:
    """(B, len(fractions)) booleans: whether `model` (in eval mode) still predicts `targets` after
    removing each fraction of the patches in the maps' order. Removing nothing keeps the intact
    image, whose prediction the targets are, so that column is not recomputed."""
    order = removal_order(maps, most_relevant_first)
    patch = model.patch_embedding.kernel_size
    kept = []
    for fraction in fractions:
        count = patches_to_remove(fraction, order.shape[1])
        if count == 0:
            kept.append(torch.ones(len(images), dtype=torch.bool, device=images.device))
            continue
        logits = model(remove_patches(images, order, count, patch, value))
        kept.append(logits.argmax(dim=-1) == targets)
    return torch.stack(kept, dim=1)


def curve_auc(curve, fractions=FRACTIONS) -> float:
    """Area under a curve of shares in [0, 1] over `fractions`, by trapezoids, in % of the span:
    100 when the prediction always stayed, 0 when it never did beyond the first point."""
    x = torch.as_tensor(fractions, dtype=torch.float64)
    y = torch.as_tensor(curve, dtype=torch.float64)
    return float(100.0 * torch.trapezoid(y, x) / (x[-1] - x[0]))


def grid_mask(mask: torch.Tensor, grid, coverage: float = OBJECT_COVERAGE) -> torch.Tensor:
    """An (H, W) object mask (non-zero = object) as a (gh, gw) boolean mask of the object's patches.

    The eval transform resizes the whole image to the model's square input, so patch (r, c) is
    cell (r, c) of a gh x gw division of the original image: its share of object pixels decides.
    """
    share = F.adaptive_avg_pool2d(mask.float()[None, None].ne(0).float(), tuple(grid))[0, 0]
    return share >= coverage


def pointing_game(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(B,) booleans: the map's highest patch lies on the object ((B, gh, gw) boolean masks)."""
    top = maps.flatten(1).argmax(dim=1, keepdim=True)
    return masks.flatten(1).gather(1, top)[:, 0]


def top_patch_iou(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(B,) IoU between the object's k patches and the map's k highest patches (k per image)."""
    flat_masks = masks.flatten(1)
    k = flat_masks.sum(dim=1)
    rank = maps.flatten(1).argsort(dim=1, descending=True, stable=True).argsort(dim=1)
    top = rank < k[:, None]
    inter = (top & flat_masks).sum(dim=1).double()
    union = (top | flat_masks).sum(dim=1).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))


class FaithfulnessTally:
    """Sums over batches, per method, of everything the report needs; `summary()` gives the scores."""

    def __init__(self, methods, fractions=FRACTIONS):
        self.fractions = tuple(fractions)
        self.images = 0
        self.located = 0
        zeros = lambda: torch.zeros(len(self.fractions), dtype=torch.float64)  # noqa: E731
        self.positive = {m: zeros() for m in methods}
        self.negative = {m: zeros() for m in methods}
        self.pointing = dict.fromkeys(methods, 0.0)
        self.iou = dict.fromkeys(methods, 0.0)

    def add_curves(self, method: str, positive: torch.Tensor, negative: torch.Tensor) -> None:
        self.positive[method] += positive.double().sum(dim=0).cpu()
        self.negative[method] += negative.double().sum(dim=0).cpu()

    def add_localisation(self, method: str, maps: torch.Tensor, masks: torch.Tensor) -> None:
        self.pointing[method] += float(pointing_game(maps, masks).double().sum())
        self.iou[method] += float(top_patch_iou(maps, masks).sum())

    def summary(self) -> dict:
        """Per method: both AUCs and curves (shares), pointing game and IoU in % (None without masks)."""
        result = {}
        for m in self.positive:
            positive = (self.positive[m] / max(self.images, 1)).tolist()
            negative = (self.negative[m] / max(self.images, 1)).tolist()
            result[m] = {
                "positive_auc": round(curve_auc(positive, self.fractions), 2),
                "negative_auc": round(curve_auc(negative, self.fractions), 2),
                "pointing_game": round(100 * self.pointing[m] / self.located, 2) if self.located else None,
                "iou": round(100 * self.iou[m] / self.located, 2) if self.located else None,
                "positive_curve": [round(v, 4) for v in positive],
                "negative_curve": [round(v, 4) for v in negative],
            }
        return result


def compare_with_random(scores: dict, baseline: dict) -> str:
    """Which perturbation tests a method wins against the random baseline, in words."""
    positive = scores["positive_auc"] < baseline["positive_auc"]
    negative = scores["negative_auc"] > baseline["negative_auc"]
    return {(True, True): "beats it in both tests", (True, False): "beats it in the positive test only",
            (False, True): "beats it in the negative test only", (False, False): "loses in both tests"}[
        (positive, negative)]


def faithfulness_table(summary: dict) -> str:
    """A Markdown table of the scores, one row per method, with its standing against random."""
    lines = ["| method | positive AUC (lower is better) | negative AUC (higher is better) | "
             "pointing game % | IoU % | against random |",
             "|---|---|---|---|---|---|"]
    baseline = summary.get("random")
    for method, s in summary.items():
        located = [f"{s[k]:.1f}" if s[k] is not None else "-" for k in ("pointing_game", "iou")]
        standing = "(the baseline)" if method == "random" else (
            compare_with_random(s, baseline) if baseline else "-")
        lines.append(f"| {method} | {s['positive_auc']:.1f} | {s['negative_auc']:.1f} | "
                     f"{located[0]} | {located[1]} | {standing} |")
    return "\n".join(lines)
