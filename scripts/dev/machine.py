"""What the machine is, as one JSON line: CPUs, memory, the size of /dev/shm, the GPUs that
nvidia-smi lists, and the Python, torch and CUDA versions. `scripts/gpu_check.sh` records it first,
so every figure of a run can be read against the machine that produced it.

  python scripts/dev/machine.py
"""
import datetime
import json
import os
import platform
import shutil
import subprocess

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main
import torch

GIB = 2**30


def memory_gib() -> float | None:
    """Total memory from /proc/meminfo (Linux), None elsewhere."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) * 1024 / GIB, 1)
    except OSError:
        pass
    return None


def shm_gib() -> float | None:
    """The size of /dev/shm, where shared tensors (DataLoader workers, --cache_images) live."""
    try:
        return round(shutil.disk_usage("/dev/shm").total / GIB, 1)
    except OSError:
        return None


def nvidia_gpus() -> list:
    """One 'name, memory, driver' string per GPU that nvidia-smi lists; empty without nvidia-smi."""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                               "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


def machine_record() -> dict:
    return {
        "check": "machine",
        "date": datetime.date.today().isoformat(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": memory_gib(),
        "shm_gib": shm_gib(),
        "gpus": nvidia_gpus(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
    }


def main():
    print(json.dumps(machine_record()))


if __name__ == "__main__":
    run_main(main)
