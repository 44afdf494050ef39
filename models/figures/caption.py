"""The caption figure: the image under <start>, then each token's cross-attention over the image."""
import math

import numpy as np

from models.figures.plots import blend_map, subplots

COLUMNS = 5
PANEL_INCHES = 2.4
# A panel is at most this many times taller than wide (or wider than tall): a 50x4000 strip would
# otherwise make a figure of tens of thousands of pixels; its image is drawn narrower in its panel.
MAX_PANEL_ASPECT = 3.0


def caption_figure(image, title: str, labels: list, maps: np.ndarray, note: str = ""):
    """The figure for one image: `maps` (n, h, w) gives panels in rows of COLUMNS; (n, heads, h, w) a
    row per head. Panel 0 is the plain image under <start>, panel k the map of labels[k - 1]."""
    per_head = maps.ndim == 4
    panels = [("<start>", None)] + list(zip(labels, maps))
    if per_head:
        rows, cols = maps.shape[1], len(panels)
    else:
        cols = min(COLUMNS, len(panels))
        rows = math.ceil(len(panels) / cols)
    width, height = image.size
    aspect = min(max(height / width, 1 / MAX_PANEL_ASPECT), MAX_PANEL_ASPECT)
    fig, axes = subplots(rows, cols, squeeze=False, layout="constrained",
                         figsize=(cols * PANEL_INCHES, rows * (PANEL_INCHES * aspect + 0.3) + 0.6))
    for index, ax in enumerate(axes.flat):
        row, col = divmod(index, cols)
        if per_head:
            label, attention = panels[col]
            attention = None if attention is None else attention[row]
        elif index < len(panels):
            label, attention = panels[index]
        else:
            ax.remove()
            continue
        ax.imshow(image if attention is None else blend_map(image, attention))
        ax.set_xticks([])
        ax.set_yticks([])
        if not per_head or row == 0:
            ax.set_title(label)
        if per_head and col == 0:
            ax.set_ylabel(f"head {row}")
    fig.suptitle(title, fontsize=14)
    if note:
        fig.supxlabel(note, fontsize=9)
    return fig
