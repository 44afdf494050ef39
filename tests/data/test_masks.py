"""data/masks.py and the synthetic set's masks: trimaps, binary and colour masks, one-line errors."""

import numpy as np
import pytest
from PIL import Image

from data.io import UserError
from data.masks import mask_paths, object_mask, read_mask, read_masks
from data.synthetic import make_synthetic_split
from tests.support import huge_png


def test_trimaps_binary_and_colour_masks(tmp_path):
    trimap = np.array([[1, 2], [3, 2]], dtype=np.uint8)  # Pets: 1 pet, 2 background, 3 border
    assert object_mask(trimap).tolist() == [[True, False], [True, False]]
    assert object_mask(np.array([[0, 255], [255, 0]], dtype=np.uint8)).tolist() == [[False, True], [True, False]]
    rgba = np.zeros((1, 2, 4), dtype=np.uint8)
    rgba[..., 3] = 255  # opaque black: alpha is no label
    rgba[0, 1, 0] = 200
    assert object_mask(rgba).tolist() == [[False, True]]
    Image.fromarray(trimap, mode="L").save(tmp_path / "a.png")
    assert read_mask(tmp_path / "a.png").tolist() == [[True, False], [True, False]]
    assert mask_paths(tmp_path, [tmp_path / "x" / "a.jpg", tmp_path / "b.jpg"]) == [tmp_path / "a.png", None]


def test_a_mask_pil_cannot_decode_is_one_line(tmp_path):
    for name, write in (("bomb.png", lambda p: huge_png(p)),  # PIL's DecompressionBombError
                        ("cut.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 40))):
        write(tmp_path / name)
        with pytest.raises(UserError, match=f"cannot read mask .*{name}"):
            read_mask(tmp_path / name)


def test_synthetic_masks_line_up_with_the_shapes(tmp_path):
    out = make_synthetic_split(tmp_path / "m", seed=3, size=32, train_per_class=0, val_per_class=1, masks=True)
    plain = make_synthetic_split(tmp_path / "p", seed=3, size=32, train_per_class=0, val_per_class=1)
    images = sorted((out / "val").iterdir())
    assert [p.name for p in sorted((out / "val_masks").iterdir())] == [p.name for p in images]
    assert not (plain / "val_masks").exists()
    for path in images:
        assert (plain / "val" / path.name).read_bytes() == path.read_bytes()  # masks change no image
        mask = read_mask(out / "val_masks" / path.name)
        saturation = np.asarray(Image.open(path).convert("HSV"))[..., 1] / 255
        assert mask.shape == saturation.shape and 0 < mask.mean() < 0.7
        # the shapes are saturated colours (>= 0.7), the backgrounds greyish (<= 0.25) with noise
        assert np.median(saturation[mask]) > 0.55 and np.median(saturation[~mask]) < 0.35, path.name


def test_grey_alpha_masks_are_read_by_their_grey_values(tmp_path):
    """An LA mask (grey + alpha) counted every opaque pixel as object."""
    grey = np.array([[0, 255], [0, 0]], dtype=np.uint8)
    la = Image.merge("LA", (Image.fromarray(grey), Image.new("L", (2, 2), 255)))
    la.save(tmp_path / "la.png")
    assert read_mask(tmp_path / "la.png").tolist() == [[False, True], [False, False]]
    palette = Image.fromarray(grey).convert("P").convert("PA")
    assert object_mask(np.asarray(palette))[0].tolist() == [False, True]


def test_a_mask_is_turned_upright_by_its_exif_orientation(tmp_path):
    """Masks follow their EXIF orientation as images do (6: turned 90 degrees clockwise to show)."""
    stored = np.zeros((2, 3), dtype=np.uint8)
    stored[0, 0] = 255  # top left as stored
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "m.png", exif=exif)
    mask = read_mask(tmp_path / "m.png")
    assert mask.shape == (3, 2) and mask[0, 1] and mask.sum() == 1  # top right once upright


def test_masks_of_another_size_or_without_object_are_left_out_with_a_warning(tmp_path, capsys):
    """A mask whose size is not its image's, or that holds no object, is warned about and left out."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for name in ("good", "small", "empty"):
        Image.new("RGB", (8, 6)).save(images / f"{name}.jpg")
    full = np.zeros((6, 8), dtype=np.uint8)
    full[2:4, 2:4] = 1
    Image.fromarray(full * 255).save(masks / "good.png")
    Image.fromarray(full[:3, :4] * 255).save(masks / "small.png")
    Image.fromarray(full * 0).save(masks / "empty.png")
    found = read_masks(masks, sorted(images.iterdir()))  # empty, good, small
    assert found[0] is None and found[2] is None and found[1].sum() == 4
    err = capsys.readouterr().err
    assert "1 of 3 images have a mask of another size" in err and "small.png 4x3 for 8x6" in err
    assert "1 of 3 images have a mask without any object" in err
    assert len(err.strip().splitlines()) == 2
