"""Images as CATR's reference inference prepares them: longer side 299, ToTensor, Normalize(0.5, 0.5)."""
import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms import functional as TF

from data.transforms import MEAN, STD

MAX_SIDE = 299


def resize_longer_side(image: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """Scale so the longer side is `max_side`, small images up as well.

    Each side is computed as side * (max_side / longer) in floating point and truncated, as the
    reference does: a 275-pixel side becomes 298, not 299. Pillow's default resampling. A side that
    would truncate to 0 (a 4000x10 strip) keeps 1 pixel: an empty image cannot be captioned.
    """
    scale = max_side / max(image.size)
    return image.resize(tuple(max(1, int(side * scale)) for side in image.size))


def preprocess(image: Image.Image) -> Tensor:
    """An RGB image, already resized, -> (3, H, W) float tensor in [-1, 1]."""
    return TF.normalize(TF.to_tensor(image), MEAN, STD)


def batch_images(images: list) -> tuple:
    """Pad (C, H, W) tensors (images, or a backbone's features) with zeros at the bottom and right into
    one batch, with the mask of the padding (B, H, W), True where a tensor has no pixel."""
    height = max(image.shape[1] for image in images)
    width = max(image.shape[2] for image in images)
    batch = images[0].new_zeros(len(images), images[0].shape[0], height, width)
    pixel_mask = torch.ones(len(images), height, width, dtype=torch.bool, device=batch.device)
    for image, padded, mask in zip(images, batch, pixel_mask):
        padded[:, : image.shape[1], : image.shape[2]] = image
        mask[: image.shape[1], : image.shape[2]] = False
    return batch, pixel_mask
