"""data/: label parsing, RGB conversion of every image mode, folders, transforms, synthetic set."""
import numpy as np
import pytest
import torch
from PIL import Image

from data.datasets import ImageFolder, SeededSampler
from data.images import list_images, open_rgb
from data.io import UserError, atomic_path
from data.pets import CLASS_NAMES, label_from_name, parse_label, read_class_names
from data.synthetic import CLASS_ATTRIBUTES, make_synthetic_split
from data.synthetic import CLASS_NAMES as SYNTHETIC_NAMES
from data.transforms import denormalize, eval_transform, train_transform


def test_label_parsing():
    assert parse_label("p1_data/train/12_3705.jpg") == 12
    assert parse_label("0_1.PNG") == 0
    assert label_from_name("cat_2.jpg") is None and label_from_name("1.jpg") is None
    with pytest.raises(UserError, match="cannot read a label from cat_2.jpg"):
        parse_label("cat_2.jpg")
    with pytest.raises(UserError, match=r"label 37 is outside 0..36"):
        parse_label("37_1.jpg")
    assert len(CLASS_NAMES) == 37 and CLASS_NAMES[26] == "Ragdoll" and CLASS_NAMES[29] == "samoyed"


@pytest.mark.parametrize("mode,suffix", [("L", ".jpg"), ("RGBA", ".png"), ("P", ".png"), ("CMYK", ".jpg"),
                                         ("I;16", ".png"), ("1", ".png"), ("LA", ".png")])
def test_every_mode_becomes_rgb(tmp_path, mode, suffix):
    image = Image.new(mode, (20, 10))
    if mode == "P":
        image.info["transparency"] = 0
    path = tmp_path / f"x{suffix}"
    image.save(path)
    rgb = open_rgb(path)
    assert rgb.mode == "RGB" and rgb.size == (20, 10)


def test_corrupt_and_truncated_images_are_named(tmp_path):
    good = tmp_path / "0_1.jpg"
    Image.new("RGB", (64, 64), "red").save(good, quality=95)
    truncated = tmp_path / "0_2.jpg"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    garbage = tmp_path / "0_3.png"
    garbage.write_bytes(b"not an image at all")
    for bad in (truncated, garbage):
        with pytest.raises(UserError, match=bad.name):
            open_rgb(bad)
    with pytest.raises(UserError, match="skip_bad_images"):
        ImageFolder(tmp_path)
    assert [f.name for f in ImageFolder(tmp_path, skip_bad_images=True).files] == ["0_1.jpg"]


def test_list_images_skips_other_files_and_checks_the_folder(tmp_path, capsys):
    with pytest.raises(UserError, match="folder not found"):
        list_images(tmp_path / "missing")
    with pytest.raises(UserError, match="no .jpg/.jpeg/.png images"):
        list_images(tmp_path)
    for name in ("b.PNG", "a.jpeg", "c.JPG"):
        Image.new("RGB", (4, 4)).save(tmp_path / name, format="PNG" if name.endswith("PNG") else "JPEG")
    (tmp_path / "notes.txt").write_text("hi")
    assert [p.name for p in list_images(tmp_path)] == ["a.jpeg", "b.PNG", "c.JPG"]
    assert "notes.txt" in capsys.readouterr().err


def test_unlabeled_folder_accepts_any_name(tmp_path):
    for name in ("1.jpg", "cat_2.jpg", "whatever.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    data = ImageFolder(tmp_path, eval_transform(16), labeled=False)
    assert [data[i][1] for i in range(3)] == [0, 1, 2]
    with pytest.raises(UserError, match="cannot read a label"):
        ImageFolder(tmp_path, labeled=True)


def test_transforms_shapes_and_ranges():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (375, 500, 3), dtype=np.uint8))
    for transform in (train_transform(48), train_transform(48, augment="strong"), eval_transform(48)):
        x = transform(image)
        assert x.shape == (3, 48, 48) and x.dtype == torch.float32
        assert x.min() >= -1.0 and x.max() <= 1.0
    x = eval_transform(48)(Image.new("RGB", (10, 10), (255, 0, 128)))
    assert torch.allclose(x[:, 0, 0], torch.tensor([1.0, -1.0, 0.0039]), atol=1e-3)
    assert denormalize(x)[0, 0].tolist() == [255, 0, 128]


def test_synthetic_set_is_deterministic_and_named_like_pets(tmp_path):
    a = make_synthetic_split(tmp_path / "a", seed=3, size=32, train_per_class=1, val_per_class=1)
    b = make_synthetic_split(tmp_path / "b", seed=3, size=32, train_per_class=1, val_per_class=1)
    names = sorted(p.name for p in (a / "train").iterdir())
    assert len(names) == 37 and {parse_label(n) for n in names} == set(range(37))
    for name in names:
        assert np.array_equal(np.asarray(Image.open(a / "train" / name)), np.asarray(Image.open(b / "train" / name)))
    assert len(set(CLASS_ATTRIBUTES)) == 37  # every class a distinct shape/colour/texture combination
    assert read_class_names(a) == list(SYNTHETIC_NAMES) and read_class_names(tmp_path) == list(CLASS_NAMES)
    (tmp_path / "classes.txt").write_text("only one\n")
    with pytest.raises(UserError, match="names 1 classes, but there are 37"):
        read_class_names(tmp_path)


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_atomic_path_refuses_a_folder_or_a_file_in_the_way(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="it is a folder"):
        with atomic_path(tmp_path):
            pass
    with pytest.raises(UserError, match="a file stands where its folder should be"):
        with atomic_path(tmp_path / "file" / "out.csv"):
            pass


def test_seeded_items_repeat_their_random_crop(synthetic_data):
    data = ImageFolder(synthetic_data / "train", train_transform(32), check_images=False)
    torch.manual_seed(123)
    first = data[(5, 42)][0]
    assert torch.equal(first, data[(5, 42)][0])  # the global RNG's state does not matter
    assert not torch.equal(first, data[(5, 43)][0])
    sampler = SeededSampler(data, num_replicas=1, rank=0, seed=7)
    sampler.set_epoch(3)
    items = list(sampler)
    assert sorted(i for i, _ in items) == list(range(len(data))) and len({s for _, s in items}) == len(data)
    assert items == list(sampler)  # the same epoch, the same order and seeds


def test_synthetic_data_refuses_a_file_in_place_of_its_folder(tmp_path, run_cli):
    import importlib.util

    from tests.conftest import ROOT
    spec = importlib.util.spec_from_file_location("make_synthetic_data", ROOT / "scripts/make_synthetic_data.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    (tmp_path / "taken").write_text("x")
    code, _, err = run_cli(script.main, ["--out", tmp_path / "taken" / "data"])
    assert code == 2 and "a file stands where its folder should be" in err and len(err.splitlines()) == 1
