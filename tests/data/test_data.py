"""data/: label parsing, RGB conversion of every image mode, folders, transforms, synthetic set."""
import time

import numpy as np
import pytest
import torch
from PIL import Image

import data.datasets
from data.datasets import ImageFolder, SeededSampler
from data.images import list_images, open_rgb
from data.io import UserError, atomic_path, temporaries_of, write_text_atomic
from data.pets import CLASS_NAMES, label_from_name, parse_label, read_class_names
from data.synthetic import CLASS_ATTRIBUTES, make_synthetic_split
from data.synthetic import CLASS_NAMES as SYNTHETIC_NAMES
from data.transforms import denormalize, eval_transform, normalize_batch, train_transform
import make_synthetic_data
from tests.support import huge_png, kill_on_image_save


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
    (tmp_path / "taken").write_text("x")
    code, _, err = run_cli(make_synthetic_data.main, ["--out", tmp_path / "taken" / "data"])
    assert code == 2 and "a file stands where its folder should be" in err and len(err.splitlines()) == 1


def test_decompression_bombs_and_other_pil_errors_are_corrupt_images(tmp_path, monkeypatch, capsys):
    bomb = huge_png(tmp_path / "1_bomb.png")
    with pytest.raises(UserError, match="1_bomb.png.*100,000,000 pixels"):
        open_rgb(bomb)
    over = huge_png(tmp_path / "2_over.png", 10001, 10000)  # above the limit, below PIL's own error
    with pytest.raises(UserError, match="10001x10000 is 100 megapixels"):
        open_rgb(over)
    Image.new("RGB", (8, 8)).save(tmp_path / "0_good.png")
    data = ImageFolder(tmp_path, skip_bad_images=True)
    assert [f.name for f in data.files] == ["0_good.png"]
    assert "1_bomb.png" in capsys.readouterr().err

    def decoder_bug(self):
        raise IndexError("tuple index out of range")
    monkeypatch.setattr(Image.Image, "load", decoder_bug)
    with pytest.raises(UserError, match="cannot read image .*0_good.png: tuple index out of range"):
        open_rgb(tmp_path / "0_good.png")


def test_a_30_megapixel_photo_opens(tmp_path):
    Image.new("RGB", (6720, 4480), (90, 120, 30)).save(tmp_path / "photo.jpg", quality=80)
    assert open_rgb(tmp_path / "photo.jpg").size == (6720, 4480)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 10, 20))  # blue on the left
    exif = image.getexif()
    exif[0x0112] = 6  # stored turned left: viewers turn it 90 degrees clockwise
    image.save(tmp_path / "photo.jpg", exif=exif, quality=95)
    upright = open_rgb(tmp_path / "photo.jpg")
    assert upright.size == (20, 40)
    assert upright.getpixel((10, 2))[2] > 200  # the blue band is now on top


def test_labels_are_ascii_digits_only():
    assert label_from_name("²_1.png") is None and label_from_name("١_1.png") is None
    assert label_from_name("12_1.png") == 12
    with pytest.raises(UserError, match="cannot read a label"):
        parse_label("²_1.png")


def test_hidden_files_and_dangling_links_are_warned_about(tmp_path, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "0_1.png")
    (tmp_path / ".DS_Store").write_bytes(b"x")
    (tmp_path / "3_2.png").symlink_to(tmp_path / "gone.png")
    (tmp_path / "sub").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["0_1.png"]
    err = capsys.readouterr().err
    assert "1 hidden file" in err and ".DS_Store" in err
    assert "link to nothing" in err and "3_2.png" in err
    assert "sub" not in err


def test_unreadable_folder_is_one_line(tmp_path, monkeypatch):
    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))
    monkeypatch.setattr(type(tmp_path), "iterdir", denied)
    with pytest.raises(UserError, match="cannot read the folder .*Permission denied"):
        list_images(tmp_path)


def test_classes_txt_must_be_utf8(tmp_path):
    (tmp_path / "classes.txt").write_bytes(b"caf\xe9\n" * 37)
    with pytest.raises(UserError, match="not UTF-8"):
        read_class_names(tmp_path)


def test_atomic_writes_reach_the_disk(tmp_path, monkeypatch):
    import os

    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    write_text_atomic(tmp_path / "a.txt", "x")
    assert len(synced) == 2 and synced[0].endswith(".tmp") and synced[1] == str(tmp_path)
    assert (tmp_path / "a.txt").read_text() == "x"


def test_temporaries_of_names_what_atomic_path_leaves(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "last.pt") as tmp:
            tmp.write_bytes(b"half")
            (tmp_path / "kept").write_bytes(tmp.read_bytes())
            stale = tmp
            raise KeyboardInterrupt
    stale.write_bytes(b"half")  # as a kill -9 leaves it, the cleanup never having run
    assert temporaries_of(tmp_path / "last.pt") == [stale]
    assert temporaries_of(tmp_path / "best.pt") == []


@pytest.mark.parametrize("flags,message", [
    (["--size", "0"], "in 8..10000 pixels"),
    (["--size", "100000"], "in 8..10000 pixels"),
    (["--train_per_class", "-1"], "at least 1"),
    (["--val_per_class", "0"], "at least 1"),
])
def test_synthetic_data_checks_its_numbers(tmp_path, run_cli, flags, message):
    code, _, err = run_cli(make_synthetic_data.main, ["--out", tmp_path / "data", *flags])
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "data").exists()


def test_synthetic_data_refuses_a_folder_with_images_and_writes_atomically(tmp_path, run_cli, monkeypatch):
    make_synthetic_split(tmp_path / "data", size=8, train_per_class=1, val_per_class=1)
    code, _, err = run_cli(make_synthetic_data.main, ["--out", tmp_path / "data", "--size", "16"])
    assert code == 2 and "already holds images" in err
    assert Image.open(tmp_path / "data" / "train" / "0_0.png").size == (8, 8)

    kill_on_image_save(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        make_synthetic_split(tmp_path / "cut", size=8, train_per_class=1, val_per_class=1)
    names = sorted(p.name for p in (tmp_path / "cut" / "train").iterdir())
    assert names == ["0_0.png", "1_1.png"]  # no half image under a final name, no temporary left


def test_an_error_inside_a_loader_worker_is_one_line(tmp_path, run_cli):
    from torch.utils.data import DataLoader

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"\x89PNG broken after the check")
    data = ImageFolder(tmp_path, eval_transform(8), labeled=False, check_images=False)

    def main(argv):
        list(DataLoader(data, batch_size=1, num_workers=1))
    code, _, err = run_cli(main, [])
    assert code == 2
    assert err.startswith("error: cannot read image ") and "b.png" in err and len(err.splitlines()) == 1, err


def pets_like_folder(folder, count=6):
    """Labeled JPEGs of different sizes and modes, like the Pets files (grayscale and PNG among them)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 256, (30 + 7 * i, 50 - 3 * i, 3), dtype=np.uint8)
        image = Image.fromarray(pixels).convert("L" if i == 2 else "RGB")
        image.save(folder / f"{i}_{i}{'.png' if i == 3 else '.jpg'}")
    return folder


@pytest.mark.parametrize("augment", ["basic", "light", "strong"])
def test_uint8_items_normalised_on_the_device_equal_the_float_path(tmp_path, augment):
    folder = pets_like_folder(tmp_path / "train")
    float_set = ImageFolder(folder, train_transform(24, augment=augment))
    byte_set = ImageFolder(folder, train_transform(24, augment=augment, to_float=False))
    float_batch = torch.stack([float_set[(i, 7 + i)][0] for i in range(len(float_set))])
    byte_batch = torch.stack([byte_set[(i, 7 + i)][0] for i in range(len(byte_set))])
    assert byte_batch.dtype == (torch.float32 if augment == "strong" else torch.uint8)
    assert torch.equal(normalize_batch(byte_batch, torch.device("cpu")), float_batch)  # bit for bit
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # another checkpoint's normalisation
    eval_float = torch.stack([x for x, _ in ImageFolder(folder, eval_transform(24, mean, std))])
    eval_bytes = torch.stack([x for x, _ in ImageFolder(folder, eval_transform(24, mean, std, to_float=False))])
    assert torch.equal(normalize_batch(eval_bytes, torch.device("cpu"), mean, std), eval_float)


def test_cached_images_give_the_same_items_as_the_files(tmp_path):
    folder = pets_like_folder(tmp_path / "train")
    transform = train_transform(24, to_float=False)
    files = ImageFolder(folder, transform)
    cached = ImageFolder(folder, transform, cache_images=True)
    assert cached.cache.data.is_shared()  # one copy, seen by every worker process
    assert cached.cache.data.numel() == sum(open_rgb(f).width * open_rgb(f).height * 3 for f in files.files)
    for i in range(len(files)):
        assert torch.equal(cached[(i, 100 + i)][0], files[(i, 100 + i)][0])
        assert cached[i][1] == files[i][1]


def test_cached_images_skip_a_bad_file_like_the_files_do(tmp_path):
    folder = pets_like_folder(tmp_path / "train")
    (folder / "4_9.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(UserError, match="4_9.jpg"):
        ImageFolder(folder, cache_images=True)
    cached = ImageFolder(folder, eval_transform(16, to_float=False), cache_images=True, skip_bad_images=True)
    files = ImageFolder(folder, eval_transform(16, to_float=False), skip_bad_images=True)
    assert cached.files == files.files and len(cached) == 6
    assert all(torch.equal(cached[i][0], files[i][0]) for i in range(len(files)))


def test_checking_in_threads_reports_the_bad_files_as_one_thread_does(tmp_path, monkeypatch, capsys):
    folder = pets_like_folder(tmp_path / "train")
    good = (folder / "0_0.jpg").read_bytes()
    (folder / "1_9.jpg").write_bytes(good[: len(good) // 2])
    (folder / "4_8.png").write_text("not an image")
    real_open_rgb = data.datasets.open_rgb

    def open_rgb_late_for_the_first_bad_file(path):
        if path.name == "1_9.jpg":
            time.sleep(0.3)  # so that, in threads, the later bad file fails first
        return real_open_rgb(path)
    monkeypatch.setattr(data.datasets, "open_rgb", open_rgb_late_for_the_first_bad_file)
    transform = eval_transform(16, to_float=False)
    reports, datasets = [], []
    for threads in (1, 4):
        with pytest.raises(UserError) as raised:
            ImageFolder(folder, check_threads=threads)
        dataset = ImageFolder(folder, transform, skip_bad_images=True, cache_images=threads > 1, check_threads=threads)
        reports.append((str(raised.value), capsys.readouterr().err, dataset.files, dataset.labels))
        datasets.append(dataset)
    assert reports[0] == reports[1]
    error, warnings, files, _ = reports[0]
    assert "1_9.jpg" in error and "4_8.png" not in error and "--skip_bad_images" in error
    assert warnings.count("; skipped") == 2 and warnings.index("1_9.jpg") < warnings.index("4_8.png")
    assert [f.name for f in files] == ["0_0.jpg", "1_1.jpg", "2_2.jpg", "3_3.png", "4_4.jpg", "5_5.jpg"]
    assert all(torch.equal(datasets[0][i][0], datasets[1][i][0]) for i in range(len(files)))  # the threads' cache


def test_cache_images_that_do_not_fit_are_refused_with_the_size_needed(tmp_path, monkeypatch):
    folder = pets_like_folder(tmp_path / "train")
    needed = sum(Image.open(f).width * Image.open(f).height * 3 for f in sorted(folder.iterdir()))
    monkeypatch.setattr(data.datasets, "available_memory", lambda: (needed - 1, "MemAvailable"))
    with pytest.raises(UserError, match=rf"needs {needed / 1e9:.3g} GB .* only {(needed - 1) / 1e9:.3g} GB "
                                        r"is available \(MemAvailable\); run without --cache_images"):
        ImageFolder(folder, cache_images=True)
    monkeypatch.setattr(data.datasets, "available_memory", lambda: (needed, "MemAvailable"))
    assert len(ImageFolder(folder, cache_images=True)) == 6


def test_available_memory_is_the_tighter_of_memory_and_shared_memory(monkeypatch, tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 8000 kB\nMemAvailable: 1000 kB\n")
    real_open = open
    monkeypatch.setattr(data.datasets, "open", lambda path, *a, **k: real_open(meminfo if path == "/proc/meminfo"
                                                                              else path, *a, **k), raising=False)
    monkeypatch.setattr(data.datasets, "SHARED_MEMORY", str(tmp_path))
    statvfs = type("StatVfs", (), {"f_bavail": 100, "f_frsize": 4096})
    monkeypatch.setattr(data.datasets.os, "statvfs", lambda path: statvfs)
    assert data.datasets.available_memory() == (409600, f"free space in {tmp_path}")
    statvfs.f_bavail = 1000
    assert data.datasets.available_memory() == (1024000, "MemAvailable")
    meminfo.write_text("MemTotal: 8000 kB\n")  # an old kernel: free pages instead
    monkeypatch.setattr(data.datasets.os, "sysconf", {"SC_AVPHYS_PAGES": 5, "SC_PAGE_SIZE": 4096}.get)
    assert data.datasets.available_memory() == (20480, "free memory")


def test_cached_images_keep_the_exif_orientation(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 10, 20))
    exif = image.getexif()
    exif[0x0112] = 6  # stored turned left: upright it is 20 wide and 40 high
    image.save(folder / "0_1.jpg", exif=exif, quality=95)
    files = ImageFolder(folder, eval_transform(16, to_float=False))
    cached = ImageFolder(folder, eval_transform(16, to_float=False), cache_images=True)
    assert torch.equal(cached[0][0], files[0][0])


def test_a_name_near_the_length_limit_is_written_and_its_temporaries_found(tmp_path):
    for length in (248, 255):
        target = tmp_path / ("n" * length)
        with pytest.raises(RuntimeError):
            with atomic_path(target) as tmp:
                tmp.write_text("half")
                assert temporaries_of(target) == [tmp]
                raise RuntimeError("killed")
        write_text_atomic(target, "whole")
        assert target.read_text() == "whole" and temporaries_of(target) == []


def test_a_file_created_meanwhile_is_kept_when_replacing_is_not_allowed(tmp_path):
    target = tmp_path / "backbone.pt"
    with pytest.raises(UserError, match="was created by another process"):
        with atomic_path(target, replace=False) as tmp:
            tmp.write_text("ours")
            target.write_text("theirs")
    assert target.read_text() == "theirs" and temporaries_of(target) == []
    with atomic_path(tmp_path / "new.pt", replace=False) as tmp:
        tmp.write_text("ours")
    assert (tmp_path / "new.pt").read_text() == "ours"


@pytest.mark.parametrize("low, high, scale", [(0, 1, 255), (0, 255, 1), (-500, 3000, 255 / 3500)])
def test_a_float_tiff_decodes_to_grey_levels_on_its_own_scale(tmp_path, low, high, scale):
    """Floats in 0..1 or 0..255 are read on that scale, others stretched (0..255 floats decoded black)."""
    values = np.linspace(low, high, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(values, mode="F").save(tmp_path / "f.tif")
    grey = np.asarray(open_rgb(tmp_path / "f.tif"))[..., 0].astype(np.float32)
    assert grey.max() == 255 and grey.min() == 0 and np.abs(grey - (values - low) * scale).max() <= 1
