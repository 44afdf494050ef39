"""Shared fixtures: small synthetic data, a micro checkpoint, a tiny CATR, running a CLI in-process,
and a guard that fails any test which leaves global state changed."""
import functools
import os
import sys

# Under pytest-xdist every worker is a process of its own, and torch's default of one thread per core
# in each of them oversubscribes the cores: OpenMP's threads then wait on each other, and a training
# step took up to 8 times as long. So each worker gets its share of the cores, before torch is
# imported (an OMP_NUM_THREADS of the user's is kept). Subprocesses that tests start inherit it.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

import pytest  # noqa: E402  (after the thread count, which torch reads when it loads)
import torch  # noqa: E402
import torch._dynamo
import torch._inductor.config

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


def global_state() -> dict:
    """What one test could change for every later one in the same process: torch's threads, dtype,
    grad mode and numerics flags, the compiler's configuration and stance, the environment, the
    working directory, the import path and the modules already imported, matplotlib's settings."""
    import torch._dynamo.eval_frame as eval_frame

    state = {
        "threads": torch.get_num_threads(),
        "default dtype": torch.get_default_dtype(),
        "grad mode": torch.is_grad_enabled(),
        "deterministic algorithms": torch.are_deterministic_algorithms_enabled(),
        "float32 matmul precision": torch.get_float32_matmul_precision(),
        "cudnn": (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
                  torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision),
        "dynamo config": torch._dynamo.config.get_config_copy(),
        "inductor config": torch._inductor.config.get_config_copy(),
        "compiler stance": eval_frame._stance,
        "torch.compile": torch.compile,
        # pytest itself names the running test in the environment
        "environment": {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"},
        "working directory": os.getcwd(),
        "sys.path": list(sys.path),
        "modules": {name: id(module) for name, module in sys.modules.items()},
    }
    if "matplotlib" in sys.modules:
        state["matplotlib rc"] = dict(sys.modules["matplotlib"].rcParams)
    return state


def _difference(name, before, after) -> str:
    if isinstance(before, dict):
        keys = sorted(k for k in before.keys() | after.keys() if before.get(k, None) != after.get(k, None))
        return f"{name} ({', '.join(map(str, keys[:4]))})"
    return f"{name} ({before!r} -> {after!r})"


@pytest.fixture(autouse=True)
def restores_global_state():
    """Every test leaves the process as it found it, so the suite passes in any order."""
    before = global_state()
    yield
    after = global_state()
    before["modules"] = {name: key for name, key in before["modules"].items() if after["modules"].get(name) != key}
    after["modules"] = {}  # modules a test imports stay; one removed or replaced is a change
    changed = [_difference(name, before[name], after[name]) for name in before
               if name in after and before[name] != after[name]]
    assert not changed, f"the test left global state changed: {', '.join(changed)}"


@pytest.fixture
def fresh_dynamo():
    """dynamo's caches emptied and its counters cleared before the test and after it, whatever happens."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    try:
        yield torch._dynamo.utils.counters
    finally:
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()


@pytest.fixture
def aot_eager_compile(fresh_dynamo, monkeypatch):
    """`torch.compile` on the `aot_eager` backend, which traces forward and backward as the default
    one does without generating kernels (seconds, not minutes), and raises on any recompilation.
    Yields dynamo's counters. (The stance "fail_on_recompile" would refuse the first compilation
    too, which happens inside the code under test.)"""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    with torch._dynamo.config.patch(error_on_recompile=True):
        yield fresh_dynamo


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

