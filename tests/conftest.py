"""Shared fixtures: small synthetic data, a micro checkpoint, a tiny CATR, and running a CLI in-process."""
import pytest
import torch

from tests.support import ROOT  # noqa: F401  (first: it puts the repository and its scripts on sys.path)
import catr
from data.entry import run_main
from data.synthetic import make_synthetic_split
from models.checkpoint import model_config, save_checkpoint
from models.vit import random_vit


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        # The marker, not the keywords: those also hold folder names, and a checkout may sit in one named cuda.
        if item.get_closest_marker("cuda") is not None:
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


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory):
    """A checkpoint of a random 'micro' ViT at 32 px with a non-zero head (read-only: never write to it)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_checkpoint(path, random_vit("micro"), model_config("micro", 32), epoch=1)
    return path


@pytest.fixture(scope="session")
def tiny_catr():
    """The tiny CATR configuration with random weights, in eval mode (read-only)."""
    torch.manual_seed(0)
    return catr.build_model("tiny").eval()

