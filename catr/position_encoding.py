"""The fixed sine position encoding of the image features (DETR's, normalised)."""
import math

import torch
from torch import Tensor, nn


class PositionEmbeddingSine(nn.Module):
    """Attention-is-all-you-need sines and cosines over the (row, column) of each feature cell.

    Coordinates count only un-padded cells and are scaled so the last real row or column sits at 2*pi,
    which makes the encoding independent of the image size. The first half of the channels encodes the
    row, the second half the column; within each half, channels 2k and 2k+1 hold sin and cos of one
    frequency.
    """

    def __init__(self, num_pos_feats: int = 128, temperature: float = 10000.0, eps: float = 1e-6):
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.eps = eps

    def forward(self, padding_mask: Tensor) -> Tensor:
        """(B, h, w) mask, True on padding -> (B, 2 * num_pos_feats, h, w) encoding."""
        valid = ~padding_mask
        y = valid.cumsum(1, dtype=torch.float32)
        x = valid.cumsum(2, dtype=torch.float32)
        y = y / (y[:, -1:, :] + self.eps) * (2 * math.pi)
        x = x / (x[:, :, -1:] + self.eps) * (2 * math.pi)

        pair = torch.arange(self.num_pos_feats, device=padding_mask.device) // 2
        wavelengths = self.temperature ** (2 * pair / self.num_pos_feats)
        pos = torch.cat((self._sin_cos(y, wavelengths), self._sin_cos(x, wavelengths)), dim=3)
        return pos.permute(0, 3, 1, 2)

    @staticmethod
    def _sin_cos(coord: Tensor, wavelengths: Tensor) -> Tensor:
        """(B, h, w) coordinates -> (B, h, w, F): sin on even channels, cos on odd ones."""
        angles = coord[..., None] / wavelengths
        return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=4).flatten(3)
