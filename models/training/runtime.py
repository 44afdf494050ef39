"""Where and how a model runs: the device a user asked for, mixed precision on CUDA, which of its
parts are compiled, and how many processes or threads decode images for it."""
import contextlib
import os

import torch

from data.io import UserError, warn

PRECISIONS = ("bf16", "fp32")  # what a run may ask for; run_precision says what it computes in
MAX_SEED = 2**32 - 1  # seeds derived from it (per epoch, per image) stay within torch.manual_seed's range


@contextlib.contextmanager
def torch_threads(count: int):
    """Run a block on `count` intra-op CPU threads, then restore the count it found."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(name: str | None = None) -> torch.device:
    """'cuda', 'cuda:1', 'cpu', or None for the best available; a missing GPU is one clear error."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):  # mps, xpu ...: not supported here
        raise UserError(f"unknown device {name!r}; use cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name} was asked for, but no CUDA GPU is available here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) here")
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)  # kernels, caches and NCCL default to the current device
    return device


def bf16_supported(device: torch.device) -> bool:
    """Ampere (compute capability 8.0) and newer GPUs; older ones (T4, V100) emulate bf16 slowly."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)


def run_precision(device: torch.device, precision: str = "bf16", training: bool = False,
                  cpu_bf16: bool = False) -> str:
    """The one precision policy: what a run that asks for `precision` really computes in.

    bf16 autocast on GPUs with fast bf16. GPUs without it infer in fp16 and train in fp32: fp16
    training would need loss scaling. The CPU runs fp32 (bf16 there is slower without AMX), unless a
    benchmark measures CPU bf16 on purpose (`cpu_bf16`).
    """
    if precision == "fp32":
        return "fp32"
    if device.type == "cuda":
        return "bf16" if bf16_supported(device) else ("fp32" if training else "fp16")
    return "bf16" if cpu_bf16 else "fp32"


def training_precision(device: torch.device, precision: str) -> str:
    """`run_precision` of a training run, with a warning when the GPU cannot train in `precision`."""
    chosen = run_precision(device, precision, training=True)
    if device.type == "cuda" and chosen != precision:
        warn(f"{torch.cuda.get_device_name(device)} has no fast bf16: training in {chosen}")
    return chosen


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str = "bf16", training: bool = False, cpu_bf16: bool = False):
    """The autocast context of `run_precision` (a no-op for fp32)."""
    dtype = AUTOCAST_DTYPES.get(run_precision(device, precision, training, cpu_bf16))
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def compile_blocks(model: torch.nn.Module, **options) -> torch.nn.Module:
    """Compile each transformer block of a package ViT in place (regional compilation), with
    torch.compile's `options` (a backend, for a measurement); returns `model`.

    The blocks are instances of one class with one forward, so dynamo traces the first block and
    every other block reuses that graph (its weights are inputs of the graph, not constants): the
    compile time is one block's, not 24 unrolled ones. The blocks stay where they were, so the state
    dict keeps its names. The rest of the model (patch embedding, head) runs eagerly.
    """
    for block in model.transformer.blocks:
        block.compile(**options)
    return model


def uncompiled():
    """A context in which compiled modules run eagerly: a batch of another shape, or evaluation,
    then compiles nothing."""
    return torch.compiler.set_stance("force_eager")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which a scheduler or container may narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def cpu_share(local_world_size: int | None = None) -> int:
    """This process's share of the CPUs, at least 1: all of them, or an equal part for each of the
    processes torchrun started on this machine."""
    local_world_size = local_world_size or int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, available_cpus() // max(1, local_world_size))


def default_num_workers(device: torch.device, local_world_size: int | None = None) -> int:
    """Decoding processes per training or inference process: on a GPU, its `cpu_share`, at most 8;
    on a CPU 0, because the model's own threads already use every core (2 workers gave no gain on
    2 cores, even for the tiny model at 64 px)."""
    if device.type != "cuda":
        return 0
    return min(8, cpu_share(local_world_size))
