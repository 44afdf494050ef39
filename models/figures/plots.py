"""What every figure of both problems is built on: a figure that needs no display, maps laid over
images, and saving figures atomically.

Figures are `matplotlib.figure.Figure` objects drawn by the Agg canvas, never pyplot: nothing here
picks a global backend or keeps a list of open windows, so importing it changes no state and a
figure is freed like any object once saved.
"""
import json
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from data.io import UserError, atomic_path, write_text_atomic
from data.outputs import check_output_file


def subplots(*grid, figsize, layout=None, **kwargs):
    """`(figure, axes)` as `pyplot.subplots` gives them, without pyplot."""
    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(*grid, **kwargs)


def colormap(name: str, levels: int | None = None):
    """A registered colormap, resampled to `levels` colours when given."""
    cmap = matplotlib.colormaps[name]
    return cmap.resampled(levels) if levels else cmap


def upsample_map(attn_map, size) -> np.ndarray:
    """Bilinearly resize a (h, w) map to `size` = (H, W) and scale it to [0, 1] for display."""
    m = torch.as_tensor(np.asarray(attn_map, dtype=np.float32))[None, None]
    m = F.interpolate(m, size=tuple(size), mode="bilinear", align_corners=False)[0, 0].numpy()
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def blend_map(image, attn_map, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """The image (PIL or H x W x 3 uint8) with the upsampled map coloured and blended over it."""
    rgb = np.asarray(image, dtype=np.float32) / 255.0
    heat = colormap(cmap)(upsample_map(attn_map, rgb.shape[:2]))[..., :3]
    return (1 - alpha) * rgb + alpha * heat


def check_figure_path(path, flag: str, inputs=()) -> None:
    """Refuse, before any work, a figure path whose suffix names no format matplotlib can write, or
    that cannot be written (see `data.outputs.check_output_file`)."""
    formats = FigureCanvasAgg.get_supported_filetypes()
    if Path(path).suffix.lower().lstrip(".") not in formats:
        raise UserError(f"{flag} {path}: a figure must end in one of "
                        f"{', '.join('.' + f for f in sorted(formats))}")
    check_output_file(path, flag, inputs)


def save_figure(fig, path, dpi: int = 150) -> None:
    """Write `fig` to `path` (format from the suffix) without leaving a partial file."""
    fmt = str(path).rsplit(".", 1)[-1].lower()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")


def write_report(record: dict, out_json=None, out_png=None, figure=None) -> None:
    """An evaluation's end: `record` as one JSON line, written to `out_json` when given, the figure that
    `figure()` draws saved to `out_png` when given, and the JSON line printed last, for scripts to read."""
    line = json.dumps(record)
    if out_json:
        write_text_atomic(out_json, line + "\n")
        print(f"wrote {out_json}")
    if out_png:
        save_figure(figure(), out_png)
        print(f"wrote {out_png}")
    print(line)


def save_array(path, array) -> None:
    """Write `array` as a .npy file atomically (the numbers behind a figure)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.asarray(array))
