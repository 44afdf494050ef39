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
        device = None
    if device is None or device.type not in ("cpu", "cuda"):  # mps, xpu ...: not supported here
        raise UserError(f"unknown device {name!r}; use cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name} was asked for, but no CUDA GPU is available here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) here")
    return device


def bf16_supported(device: torch.device) -> bool:
    """Ampere and newer GPUs; older ones (T4, V100) emulate bf16 slowly or refuse it."""
    return device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)


def autocast(device: torch.device, precision: str = "bf16"):
    """Mixed precision on CUDA (bf16, or fp16 on GPUs without bf16); a no-op on the CPU."""
    if device.type == "cuda" and precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16 if bf16_supported(device) else torch.float16)
    return contextlib.nullcontext()
