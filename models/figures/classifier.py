"""The problem-1 figures, sized to be read when printed at A4 width (about 6.5 inches of text).

Each function takes arrays (a similarity matrix, attention maps, the image as the model saw it) and
returns a matplotlib figure; `models.figures.plots.save_figure` writes it (`save_colormap_png` writes the
position-embedding figure as a compact, exact 256-colour PNG). The math lives in `models.explain.maps`.
"""
import io
import math

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from data.io import atomic_path
from models.explain.maps import similarity_tiles
from .plots import blend_map, colormap, subplots

A4_TEXT_WIDTH = 6.5  # inches: A4 (8.27 in) less the usual margins
ATTENTION_CMAP = "jet"  # the same colours in the map panel and in the blend
SIMILARITY_CMAP = "viridis"  # as in the ViT paper; the white gaps between tiles stay distinct
SIMILARITY_LEVELS = 192  # colour steps of 2/192 ~ 0.01 in cosine; 64 palette slots left for text greys
POS_EMBED_DPI = 250  # about 2 device pixels per similarity value at 24 x 24 tiles
ATTENTION_DPI = 200


def _tile_ticks(g: int, tile: int, gap: int, axis) -> None:
    """Ticks at the centres of the tiles along one axis, labelled 1..g (every k-th past 32 tiles)."""
    shown = range(0, g, max(1, math.ceil(g / 32)))
    axis.set_ticks([i * (tile + gap) + (tile - 1) / 2 for i in shown])
    axis.set_ticklabels([str(i + 1) for i in shown])


def position_embedding_figure(similarity, grid, title: str = "") -> Figure:
    """The ViT paper's Figure 7: tile (r, c) is the similarity of patch (r, c)'s embedding to all others."""
    gh, gw = (grid, grid) if isinstance(grid, int) else grid
    gap = 1 if max(gh, gw) > 1 else 0
    mosaic = similarity_tiles(similarity, (gh, gw), gap=gap).numpy()
    cmap = colormap(SIMILARITY_CMAP, SIMILARITY_LEVELS).with_extremes(bad="white")  # the gaps
    fig, ax = subplots(figsize=(A4_TEXT_WIDTH, A4_TEXT_WIDTH * 0.86), layout="constrained")
    image = ax.imshow(np.ma.masked_invalid(mosaic), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    _tile_ticks(gw, gw, gap, ax.xaxis)
    _tile_ticks(gh, gh, gap, ax.yaxis)
    ax.tick_params(length=0, labelsize=9 if max(gh, gw) <= 16 else 7)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_xlabel("Input patch column", fontsize=11)
    ax.set_ylabel("Input patch row", fontsize=11)
    bar = fig.colorbar(image, ax=ax, shrink=0.8, ticks=[-1, -0.5, 0, 0.5, 1], pad=0.02)
    bar.set_label("Cosine similarity", fontsize=11)
    bar.ax.tick_params(labelsize=9)
    if title:
        ax.set_title(title, fontsize=11)
    return fig


def attention_figure(image, attn_map, title: str = "", map_title: str = "Attention map") -> Figure:
    """Three panels: the input as the model saw it, the (h, w) map, and the map blended over the input."""
    attn_map = np.asarray(attn_map, dtype=np.float32)
    fig, axes = subplots(1, 3, figsize=(A4_TEXT_WIDTH, A4_TEXT_WIDTH * 0.42), layout="constrained")
    axes[0].imshow(image)
    axes[0].set_title(f"Input ({image.shape[1]}x{image.shape[0]})", fontsize=9)
    shown = axes[1].imshow(attn_map, cmap=ATTENTION_CMAP, interpolation="nearest")
    axes[1].set_title(f"{map_title} ({attn_map.shape[0]}x{attn_map.shape[1]})", fontsize=9)
    bar = fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.03)
    bar.ax.tick_params(labelsize=7)
    bar.formatter.set_powerlimits((-2, 2))
    bar.ax.yaxis.get_offset_text().set_fontsize(7)
    axes[2].imshow(blend_map(image, attn_map, cmap=ATTENTION_CMAP))
    axes[2].set_title("Map over the input", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def heads_figure(image, maps, title: str = "") -> Figure:
    """One panel per head: that head's map blended over the input, each scaled to its own range."""
    maps = np.asarray(maps, dtype=np.float32)
    heads = maps.shape[0]
    cols = min(heads, 4)
    rows = math.ceil(heads / cols)
    panel = A4_TEXT_WIDTH / cols
    fig, axes = subplots(rows, cols, figsize=(A4_TEXT_WIDTH, panel * rows + 0.45),
                         layout="constrained", squeeze=False)
    for h, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if h >= heads:
            ax.set_axis_off()
            continue
        ax.imshow(blend_map(image, maps[h], cmap=ATTENTION_CMAP))
        ax.set_title(f"head {h}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def save_colormap_png(fig, path, dpi: int, cmap_name: str = SIMILARITY_CMAP,
                      levels: int = SIMILARITY_LEVELS) -> None:
    """Save a figure drawn only in `levels` colours of a colormap plus greys as a 256-colour PNG.

    A 24 x 24 grid of 24 x 24 tiles is 330k distinct values: as RGBA the PNG passes 600 kB; with
    a palette of exactly the colours drawn (the colormap's steps, greys for text) it is a quarter of
    that and the map's colours are exact.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    colours = colormap(cmap_name, levels)(np.arange(levels), bytes=True)[:, :3]  # as Agg draws them
    greys = np.linspace(0, 255, 256 - levels).round()[:, None].repeat(3, axis=1)
    palette = np.concatenate([colours, greys]).astype(np.int64)
    buffer.seek(0)
    rgb = np.asarray(Image.open(buffer).convert("RGB"))
    # nearest palette entry per distinct colour (a few hundred), not per pixel
    packed = (rgb.astype(np.int32) << np.array([16, 8, 0], dtype=np.int32)).sum(-1)
    distinct, inverse = np.unique(packed, return_inverse=True)
    distinct = (distinct[:, None] >> np.array([16, 8, 0])) & 255
    nearest = ((distinct[:, None, :] - palette[None]) ** 2).sum(-1).argmin(1)
    image = Image.fromarray(nearest[inverse.ravel()].reshape(rgb.shape[:2]).astype(np.uint8))
    image.putpalette(palette.astype(np.uint8).ravel().tolist())
    with atomic_path(path) as tmp:
        image.save(tmp, format="png", optimize=True)


def confusion_figure(confusion, class_names) -> Figure:
    """Rows = true class, columns = predicted, coloured by the share of each true class; counts written."""
    n = len(class_names)
    support = confusion.sum(dim=1, keepdim=True).clamp(min=1)
    share = (confusion.double() / support).numpy()
    side = max(6.0, 0.32 * n + 3)
    fig, ax = subplots(figsize=(side + 1.5, side))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    names = [f"{i} {name}" for i, name in enumerate(class_names)]
    ax.set_xticks(range(n), names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    for row, col in confusion.nonzero().tolist():
        ax.text(col, row, str(confusion[row, col].item()), ha="center", va="center", fontsize=5.5,
                color="white" if share[row, col] > 0.5 else "black")
    correct, total = confusion.diag().sum().item(), confusion.sum().item()
    ax.set_title(f"Confusion matrix: {100.0 * correct / max(total, 1):.2f}% correct ({correct}/{total})")
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="share of the true class")
    return fig


def perturbation_figure(summary: dict, fractions, title: str = "") -> Figure:
    """Both perturbation curves of every method: the share of predictions kept against the share of
    patches removed, most relevant first (left, lower is better) and least relevant first (right)."""
    fig, axes = subplots(1, 2, figsize=(A4_TEXT_WIDTH, A4_TEXT_WIDTH * 0.45), layout="constrained",
                         sharey=True)
    percent = [100 * f for f in fractions]
    for test, ax in zip(("positive", "negative"), axes):
        for method, scores in summary.items():
            style = dict(color="grey", linestyle="--") if method == "random" else {}
            ax.plot(percent, [100 * v for v in scores[f"{test}_curve"]], marker="o", markersize=3,
                    label=f"{method} (AUC {scores[f'{test}_auc']:.1f})", **style)
        first = "most" if test == "positive" else "least"
        better = "lower" if test == "positive" else "higher"
        ax.set_title(f"{test.capitalize()} test: {first} relevant removed first\n({better} is better)",
                     fontsize=9)
        ax.set_xlabel("patches removed (%)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=8)
    axes[0].set_ylabel("prediction unchanged (%)", fontsize=9)
    axes[0].set_ylim(-2, 102)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def checkpoints_figure(reports: list, title: str = "",
                       measures=("pointing_game", "energy", "deletion_auc", "insertion_auc")) -> Figure:
    """Each measure against the checkpoints' accuracy, one line per method, with the 95% intervals of
    both as error bars: whether better models get better maps."""
    shown = [m for m in measures if reports[0]["methods"][next(iter(reports[0]["methods"]))].get(m) is not None]
    fig, axes = subplots(1, len(shown), figsize=(A4_TEXT_WIDTH, A4_TEXT_WIDTH * 0.36), layout="constrained",
                         squeeze=False)
    order = sorted(range(len(reports)), key=lambda k: reports[k]["accuracy"])
    accuracy = [reports[k]["accuracy"] for k in order]
    accuracy_error = [[reports[k]["accuracy"] - reports[k]["accuracy_ci95"][0] for k in order],
                      [reports[k]["accuracy_ci95"][1] - reports[k]["accuracy"] for k in order]]
    for ax, measure in zip(axes[0], shown):
        for method in reports[0]["methods"]:
            values = [reports[k]["methods"][method][measure] for k in order]
            bounds = [reports[k]["methods"][method][f"{measure}_ci95"] for k in order]
            style = dict(color="grey", linestyle="--") if method == "random" else {}
            ax.errorbar(accuracy, values, xerr=accuracy_error,
                        yerr=[[v - b[0] for v, b in zip(values, bounds)], [b[1] - v for v, b in zip(values, bounds)]],
                        marker="o", markersize=3, capsize=2, label=method, **style)
        ax.set_title(measure.replace("_", " "), fontsize=9)
        ax.set_xlabel("accuracy (%)", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
