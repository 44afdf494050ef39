"""Multi-GPU and multi-node training through `torchrun`: process group set-up and exact reductions.

`torchrun` sets RANK, LOCAL_RANK and WORLD_SIZE; without them everything runs in one process.
"""
import datetime
import os
from contextlib import contextmanager

import torch
import torch.distributed as dist


def global_rank() -> int:
    """This process's rank as torchrun sets it (0 alone), known before the process group exists."""
    return int(os.environ.get("RANK", "0"))


def init_distributed(device: torch.device) -> tuple:
    """(rank, world_size, device); joins the process group when launched by torchrun, even as its
    only process (the NCCL path can then be checked on a machine with one GPU)."""
    if "RANK" not in os.environ:
        return 0, 1, device
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def backend_name() -> str:
    """' (nccl)' or ' (gloo)' under torchrun, '' in a plain process: for the start-up line."""
    return f" ({dist.get_backend()})" if is_distributed() else ""


def all_reduce_sum(values: list, device: torch.device) -> list:
    """Sum a list of numbers over all processes (identity in a single process)."""
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    if is_distributed():
        dist.all_reduce(tensor)
    return tensor.tolist()


def merge_dicts(part: dict) -> dict:
    """The union of every process's `part` (picklable values), the same dict in every process."""
    if not is_distributed():
        return dict(part)
    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, part)
    return {key: value for each in parts for key, value in each.items()}


def broadcast_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's decision (e.g. early stop) for every process."""
    if not is_distributed():
        return flag
    tensor = torch.tensor([int(flag)], device=device)
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


# Long enough for the largest pretrained file (about 1.2 GB) over a slow link; NCCL's own collective
# timeout (10 minutes) is kept for training, where a hang should be reported soon.
DOWNLOAD_TIMEOUT = datetime.timedelta(hours=2)


@contextmanager
def main_process_first():
    """Each node's local rank 0 runs the block (e.g. a download into the node's cache) while the
    node's other processes wait; then they run it too and find the file there."""
    if not is_distributed():
        yield
        return
    group = dist.new_group(backend="gloo", timeout=DOWNLOAD_TIMEOUT)  # a CPU barrier with its own timeout
    if local_rank() != 0:
        dist.barrier(group=group)
    yield
    if local_rank() == 0:
        dist.barrier(group=group)
    dist.destroy_process_group(group)


def cleanup_distributed() -> None:
    if is_distributed():
        dist.destroy_process_group()


class ShardSampler(torch.utils.data.Sampler):
    """Indices rank, rank + world, ...: every item seen by exactly one process, none repeated.

    DistributedSampler pads the last round with duplicates, which would count some validation
    images twice; evaluation uses this instead and sums the counts over processes.
    """

    def __init__(self, num_items: int, rank: int, world_size: int):
        self.indices = range(rank, num_items, world_size)

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)
