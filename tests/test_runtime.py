"""models/runtime.py: device choice and mixed precision."""
import pytest
import torch

from data.io import UserError
from models.runtime import autocast, resolve_device


def test_cpu_runs_fp32_and_a_missing_gpu_is_one_clear_error():
    device = resolve_device("cpu")
    with autocast(device, "bf16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with pytest.raises(UserError, match="unknown device"):
        resolve_device("tpu:0:x")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU is available"):
            resolve_device("cuda")
