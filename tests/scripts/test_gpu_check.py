"""scripts/gpu_check.sh: the whole GPU check as a CPU dry run, and its one-line refusals."""
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from tests.support import ROOT


def gpu_check(*args, env=None, timeout=60):
    return subprocess.run(["bash", "scripts/gpu_check.sh", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def device_command() -> str:
    """The one call docs/gpu.md gives for the GPU machine: the line after its marker comment."""
    lines = (ROOT / "docs" / "gpu.md").read_text().splitlines()
    return lines[lines.index("# on the GPU machine, in the repository, with wheels/ copied beside scripts/") + 1]


def ppvit_wheel(folder):
    """A wheel of the installed pytorch-pretrained-vit, built offline, as `pip wheel` makes one."""
    import pytorch_pretrained_vit

    source = folder / "src"
    shutil.copytree(os.path.dirname(pytorch_pretrained_vit.__file__), source / "pytorch_pretrained_vit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (source / "setup.py").write_text("from setuptools import setup\n"
                                     "setup(name='pytorch-pretrained-vit', version='0.0.7', "
                                     "packages=['pytorch_pretrained_vit'])\n")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index",
                           "--no-build-isolation", "-w", str(folder / "wheels"), str(source)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return folder / "wheels"


def hide_installed_ppvit(folder, allowed):
    """A sitecustomize that hides the ViT package unless it comes from under `allowed`: a Python
    without it, as on a bare GPU machine, that can still import what gpu_check.sh installs."""
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(
        "import importlib.machinery, sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] != 'pytorch_pretrained_vit':\n"
        "            return None\n"
        "        spec = importlib.machinery.PathFinder.find_spec(name, path, target)\n"
        f"        if spec is None or not (spec.origin or '').startswith({str(allowed)!r}):\n"
        "            raise ModuleNotFoundError(name)\n"
        "        return spec\n"
        "sys.meta_path.insert(0, Hide())\n")
    return folder


@pytest.mark.slow
def test_the_documented_device_call_installs_the_wheel_runs_every_step_and_returns_four_files(tmp_path):
    """docs/gpu.md's call, as a dry run from a folder holding wheels/ and the scripts, on a Python
    without pytorch-pretrained-vit: the wheel is installed outside OUT, every step runs, and OUT holds
    the four result files only, the logs inside the archive."""
    ppvit_wheel(tmp_path)
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {**os.environ, "BUDGET_S": "600", "TMPDIR": str(temp), "OUT": "out",
           "PYTHONPATH": str(hide_installed_ppvit(tmp_path / "hide", temp))}
    done = subprocess.run(["bash", "-c", device_command() + " --dry_run"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["bench.jsonl", "checks.jsonl", "logs.tar.gz", "summary.md"]
    assert list(temp.iterdir()) == []  # the installed wheel, inputs and caches are gone
    rows = jsonl(out / "bench.jsonl")
    assert [(r["benchmark"], r["attention"], r["precision"], r["batch_size"], r["compile"]) for r in rows] == [
        ("train", "fast", "bf16", 64, False), ("train", "explicit", "fp32", 16, False),
        ("train", "fast", "bf16", 16, False), ("train", "sdpa", "bf16", 64, False),
        ("infer", "fast", "bf16", 128, False), ("train", "fast", "bf16", 64, True), ("train", "fast", "bf16", 16, True)]
    assert all(r["device"] == "cpu" and r["model"] == "micro" for r in rows)
    checks = jsonl(out / "checks.jsonl")
    by_name = {r.get("check", r.get("benchmark")): r for r in checks}
    assert set(by_name) == {"machine", "cuda_tests", "data", "p1_inference", "p1_train"}, checks
    machine = by_name["machine"]
    assert machine["cpus"] >= 1 and machine["torch"] == torch.__version__ and machine["memory_gib"] > 0
    assert by_name["p1_inference"]["rows"] == 20 and by_name["p1_inference"]["seconds"] > 0
    assert len(by_name["p1_train"]["train_img_per_s"]) == 2
    assert by_name["data"]["speedup"] > 0
    summary = (out / "summary.md").read_text()
    assert summary.count("scripts/dev/bench_train.py") == 6 and "| p1_train.py last epoch img/s" in summary
    assert "not measured" not in summary and summary.startswith("Machine: ")
    with tarfile.open(out / "logs.tar.gz") as archive:
        logs = {Path(name).name for name in archive.getnames() if name.endswith((".log", ".tsv"))}
    steps = {"machine", "cuda_tests", "train_fast_b64", "train_explicit_fp32_b16", "train_fast_b16", "train_sdpa_b64",
             "infer_fast_b128", "inference_inputs", "train_inputs", "p1_inference", "p1_train", "data",
             "train_fast_b64_compile", "train_fast_b16_compile"}
    assert logs == {f"{name}.log" for name in steps} | {"pip.log", "system.log", "summary.log", "steps.tsv"}
    with tarfile.open(out / "logs.tar.gz") as archive:
        pip_log = archive.extractfile("logs/pip.log").read().decode()
        cuda_log = archive.extractfile("logs/cuda_tests.log").read().decode()
    assert "ERROR" not in pip_log and cuda_log.strip().splitlines()[-1] == by_name["cuda_tests"]["result"]


def test_a_failed_cuda_test_step_is_reported_as_failed():
    from benchlib import targets_table

    failed = targets_table([{"check": "cuda_tests", "status": "failed", "reason": "1 failed, 6 passed in 30.1s"}])
    assert "| CUDA tests | failed: 1 failed, 6 passed in 30.1s | all pass | no |" in failed
    assert "| CUDA tests | not run | all pass |  |" in targets_table([])


def test_refusals_are_one_line(tmp_path):
    for args, env, expected in [
        ((), {}, "usage: bash scripts/gpu_check.sh OUT_DIR [--dry_run]"),
        ((tmp_path, "--fast"), {}, "usage:"),
        ((tmp_path, "--dry_run"), {"WHEELS": str(tmp_path / "no_wheels")}, "is not a folder of wheels"),
    ]:
        done = gpu_check(*args, env=env)
        assert done.returncode == 2 and expected in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_relative_wheels_folder_is_taken_from_the_callers_folder(tmp_path):
    # "scripts" is a folder of the repository, not of the caller's folder: it must not be found there.
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "out", "--dry_run"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env={**os.environ, "WHEELS": "scripts"})
    assert done.returncode == 2 and done.stderr.strip() == "error: WHEELS=scripts is not a folder of wheels"
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_a_missing_package_is_named_with_how_to_bring_it(tmp_path):
    hide = tmp_path / "hide"  # a Python that cannot import the ViT package, as on a bare GPU machine
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'pytorch_pretrained_vit':\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Hide())\n")
    done = gpu_check(tmp_path / "out", "--dry_run", env={"PYTHONPATH": str(hide)})
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "missing Python packages: pytorch_pretrained_vit" in done.stderr and "WHEELS=DIR" in done.stderr
    assert "pip wheel pytorch-pretrained-vit==0.0.7 --no-deps -w DIR" in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_without_a_gpu_it_asks_for_dry_run(tmp_path):
    done = gpu_check(tmp_path)
    assert done.returncode == 2 and "no CUDA GPU" in done.stderr and "--dry_run" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bench.jsonl").exists() and not (tmp_path / "checks.jsonl").exists()


@pytest.mark.parametrize("earlier", ["summary.md", "bench.jsonl", "checks.jsonl", "logs.tar.gz"])
def test_earlier_results_are_refused_never_emptied(tmp_path, earlier):
    """A folder holding an earlier run's bench.jsonl or checks.jsonl was emptied before the checks
    (no GPU, wrong PYTHON) failed. Refused as one line before anything runs: no benchmark is started."""
    (tmp_path / earlier).write_text('{"benchmark": "train"}\n')
    done = gpu_check(tmp_path, "--dry_run", env={"PYTHON": str(tmp_path / "no_python")})
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"already holds {earlier} of an earlier run" in done.stderr
    assert (tmp_path / earlier).read_text() == '{"benchmark": "train"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == [earlier]


def test_a_wrong_python_writes_no_results(tmp_path):
    """The interpreter is checked before bench.jsonl and checks.jsonl are created."""
    done = gpu_check(tmp_path / "out", "--dry_run", env={"PYTHON": str(tmp_path / "no_python")})
    assert done.returncode == 2 and "set PYTHON" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "bench.jsonl").exists() and not (tmp_path / "out" / "checks.jsonl").exists()
