"""Plot helpers shared by both problems: maps laid over images, and saving figures atomically."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # scripts only write files; never ask for a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from data.io import UserError, atomic_path  # noqa: E402


def upsample_map(attn_map, size) -> np.ndarray:
    """Bilinearly resize a (h, w) map to `size` = (H, W) and scale it to [0, 1] for display."""
    m = torch.as_tensor(np.asarray(attn_map, dtype=np.float32))[None, None]
    m = F.interpolate(m, size=tuple(size), mode="bilinear", align_corners=False)[0, 0].numpy()
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def blend_map(image, attn_map, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """The image (PIL or H x W x 3 uint8) with the upsampled map coloured and blended over it."""
    rgb = np.asarray(image, dtype=np.float32) / 255.0
    heat = plt.get_cmap(cmap)(upsample_map(attn_map, rgb.shape[:2]))[..., :3]
    return (1 - alpha) * rgb + alpha * heat


def check_figure_path(path, flag: str) -> None:
    """Refuse, before any work, a figure path whose suffix names no format matplotlib can write."""
    formats = FigureCanvasAgg.get_supported_filetypes()
    if Path(path).suffix.lower().lstrip(".") not in formats:
        raise UserError(f"{flag} {path}: a figure must end in one of "
                        f"{', '.join('.' + f for f in sorted(formats))}")


def save_figure(fig, path, dpi: int = 150) -> None:
    """Write `fig` to `path` (format from the suffix) without leaving a partial file, then close it."""
    fmt = str(path).rsplit(".", 1)[-1].lower()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
