"""models/training/runtime.py: device choice, mixed precision and the default number of decoding workers."""
import os

import pytest
import torch

import models.training.runtime
from data.io import UserError
from models.training.runtime import autocast, default_num_workers, resolve_device


def test_cpu_runs_fp32_and_a_missing_gpu_is_one_clear_error():
    device = resolve_device("cpu")
    with autocast(device, "bf16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with pytest.raises(UserError, match="unknown device"):
        resolve_device("tpu:0:x")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU is available"):
            resolve_device("cuda")


@pytest.mark.parametrize("cpus,local_world,expected", [(16, 1, 8), (16, 4, 4), (6, 1, 6), (3, 8, 1)])
def test_default_workers_share_the_available_cpus_at_most_8(monkeypatch, cpus, local_world, expected):
    monkeypatch.setattr(models.training.runtime, "available_cpus", lambda: cpus)
    cuda = torch.device("cuda")
    assert default_num_workers(cuda, local_world) == expected
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(local_world))  # as torchrun sets it
    assert default_num_workers(cuda) == expected
    assert default_num_workers(torch.device("cpu"), local_world) == 0  # the model's threads use the cores


def test_available_cpus_follow_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3}, raising=False)  # a narrowed mask
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert models.training.runtime.available_cpus() == 2
    monkeypatch.delattr(os, "sched_getaffinity")  # as on macOS and Windows
    assert models.training.runtime.available_cpus() == 16
