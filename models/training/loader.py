"""The one way every script builds a DataLoader."""
import torch
from torch.utils.data import DataLoader


def make_loader(dataset, batch_size: int, num_workers: int, device: torch.device, sampler=None,
                collate_fn=None) -> DataLoader:
    """A loader for training, validation and prediction: in order unless a `sampler` orders (or
    shards) it; pinned memory lets the host-to-GPU copies overlap with compute; workers persist
    across epochs (every item is seeded by its own index, not by the worker)."""
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=num_workers,
                      pin_memory=device.type == "cuda", collate_fn=collate_fn, persistent_workers=num_workers > 0)
