"""Shared fixtures: the repository root on sys.path, small synthetic data, and running a CLI in-process."""
import importlib.util
import struct
import sys
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data.io import run_main  # noqa: E402
from data.synthetic import make_synthetic_split  # noqa: E402

# The same test on the CPU and, where one is present, on a CUDA GPU.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory):
    """A 32-px synthetic split: 10 training images per class, 1 validation image per class (37, odd)."""
    return make_synthetic_split(tmp_path_factory.mktemp("synthetic"), seed=1, size=32,
                                train_per_class=10, val_per_class=1)


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    """111 training images (three full batches of 32 and a partial one of 15), 37 validation images."""
    return make_synthetic_split(tmp_path_factory.mktemp("small"), seed=2, size=32, train_per_class=3,
                                val_per_class=1)


@pytest.fixture
def run_cli(capsys):
    """Call a script's `main(argv)` the way `python script.py` would: (exit code, stdout, stderr)."""
    def run(main, argv):
        code = 0
        try:
            run_main(lambda: main([str(a) for a in argv]))
        except SystemExit as exit_:
            code = exit_.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run


def load_script(path):
    """A script file as a module, so that tests call its `main(argv)` in-process."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kill_on_image_save(monkeypatch, count: int) -> None:
    """Make the `count`-th PIL save write half a file and raise KeyboardInterrupt, as a kill would."""
    real_save, saved = Image.Image.save, []

    def save(self, fp, *args, **kwargs):
        saved.append(fp)
        if len(saved) == count:
            open(fp, "wb").write(b"\x89PNG half")
            raise KeyboardInterrupt
        real_save(self, fp, *args, **kwargs)
    monkeypatch.setattr(Image.Image, "save", save)


def huge_png(path, width=14000, height=14000):
    """A 1x1 PNG whose header claims width x height: what PIL checks before decoding a bomb."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = ihdr[4:12]
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    path.write_bytes(bytes(data))
    return path
