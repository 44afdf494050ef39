"""Every gradient map method of the captioner, through its registry: a batch of images and captions
gives what each caption gives alone."""
import pytest
import torch

from catr.token_methods import TOKEN_METHODS, token_maps
from tests.support import random_captions


@pytest.mark.parametrize("method", TOKEN_METHODS)
def test_batched_equals_one_caption_at_a_time(tiny_catr, method):
    generator = torch.Generator().manual_seed(3)
    images = torch.randn(2, 3, 32, 48, generator=generator)
    captions = random_captions(5, 3, 4, seed=4)
    image_index = torch.tensor([0, 1, 0])
    together = token_maps(method, tiny_catr, images, captions, image_index)
    assert together.shape == (3, 5, 2, 3)
    with torch.no_grad():
        cells = [tiny_catr.image_cells(image[None]) for image in images]
    for row in range(3):
        image = image_index[row]
        alone = TOKEN_METHODS[method](tiny_catr, images[image], captions[row][None], cells=cells[image])
        scale = max(1.0, float(alone.abs().max()))
        torch.testing.assert_close(together[row], alone[0], rtol=1e-4, atol=1e-5 * scale)
    assert not tiny_catr.training
