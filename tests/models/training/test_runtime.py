"""models/training/runtime.py: device choice, mixed precision and the default number of decoding workers."""
import os

import pytest
import torch

import models.training.runtime
from data.io import UserError
from models.training.runtime import autocast, default_num_workers, resolve_device, run_precision


def test_cpu_runs_fp32_and_a_missing_gpu_is_one_clear_error():
    device = resolve_device("cpu")
    with autocast(device, "bf16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with pytest.raises(UserError, match="unknown device"):
        resolve_device("tpu:0:x")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU is available"):
            resolve_device("cuda")


@pytest.mark.parametrize("capability,training,expected", [
    ((9, 0), True, "bf16"), ((9, 0), False, "bf16"),  # Hopper, Ampere: bf16 either way
    ((7, 5), True, "fp32"), ((7, 5), False, "fp16"),  # T4: fp16 would need loss scaling to train
])
def test_one_precision_policy_for_every_gpu(monkeypatch, capability, training, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    cuda = torch.device("cuda")
    assert run_precision(cuda, "bf16", training=training) == expected
    assert run_precision(cuda, "fp32", training=training) == "fp32"


def test_the_cpu_runs_fp32_unless_a_benchmark_measures_bf16():
    cpu = torch.device("cpu")
    assert run_precision(cpu, "bf16") == run_precision(cpu, "bf16", training=True) == "fp32"
    assert run_precision(cpu, "bf16", cpu_bf16=True) == "bf16"
    with autocast(cpu, "bf16", cpu_bf16=True):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


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
