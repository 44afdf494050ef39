"""Where and how a model runs: the device a user asked for, and mixed precision on CUDA."""
import contextlib

import torch

from data.io import UserError


def resolve_device(name: str | None = None) -> torch.device:
    """'cuda', 'cuda:1', 'cpu', or None for the best available; a missing GPU is one clear error."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name} was asked for, but no CUDA GPU is available here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) here")
    return device


def autocast(device: torch.device, precision: str = "bf16"):
    """bf16 autocast on CUDA; a no-op on the CPU, where bf16 is several times slower than fp32."""
    if device.type == "cuda" and precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
