"""scripts/gpu_check.sh: the whole GPU check as a CPU dry run, and its one-line refusals."""
import json
import os
import subprocess

import pytest
import torch

from tests.support import ROOT


def gpu_check(*args, env=None, timeout=60):
    return subprocess.run(["bash", "scripts/gpu_check.sh", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_dry_run_runs_every_step_and_writes_the_tables(tmp_path):
    done = gpu_check(tmp_path / "out", "--dry_run", env={"BUDGET_S": "600"}, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    out = tmp_path / "out"
    rows = jsonl(out / "bench.jsonl")
    assert [(r["benchmark"], r["attention"], r["precision"], r["batch_size"], r["compile"]) for r in rows] == [
        ("train", "fast", "bf16", 64, False), ("train", "explicit", "fp32", 16, False),
        ("train", "fast", "bf16", 16, False), ("train", "sdpa", "bf16", 64, False),
        ("infer", "fast", "bf16", 128, False), ("train", "fast", "bf16", 64, True), ("train", "fast", "bf16", 16, True)]
    assert all(r["device"] == "cpu" and r["model"] == "micro" for r in rows)
    checks = jsonl(out / "checks.jsonl")
    by_name = {r.get("check", r.get("benchmark")): r for r in checks}
    assert set(by_name) == {"cuda_tests", "data", "p1_inference", "p1_train"}, checks
    assert by_name["p1_inference"]["rows"] == 20 and by_name["p1_inference"]["seconds"] > 0
    assert len(by_name["p1_train"]["train_img_per_s"]) == 2
    assert by_name["data"]["speedup"] > 0
    summary = (out / "summary.md").read_text()
    assert summary.count("scripts/dev/bench_train.py") == 6 and "| p1_train.py last epoch img/s" in summary
    assert "not measured" not in summary
    assert not (out / "inference").exists() and not (out / "pets_sized").exists()  # inputs cleaned up


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
    assert not (tmp_path / "bench.jsonl").exists() and not (tmp_path / "checks.jsonl").exists()  # item 3


@pytest.mark.parametrize("earlier", ["bench.jsonl", "checks.jsonl"])
def test_item_03_earlier_results_are_refused_never_emptied(tmp_path, earlier):
    """Item 3: a folder holding an earlier run's bench.jsonl or checks.jsonl was emptied before the checks
    (no GPU, wrong PYTHON) failed. Refused as one line before anything runs: no benchmark is started."""
    (tmp_path / earlier).write_text('{"benchmark": "train"}\n')
    done = gpu_check(tmp_path, "--dry_run", env={"PYTHON": str(tmp_path / "no_python")})
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"already holds {earlier} of an earlier run" in done.stderr
    assert (tmp_path / earlier).read_text() == '{"benchmark": "train"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == [earlier]


def test_item_03_a_wrong_python_writes_no_results(tmp_path):
    """Item 3: the interpreter is checked before bench.jsonl and checks.jsonl are created."""
    done = gpu_check(tmp_path / "out", "--dry_run", env={"PYTHON": str(tmp_path / "no_python")})
    assert done.returncode == 2 and "set PYTHON" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "bench.jsonl").exists() and not (tmp_path / "out" / "checks.jsonl").exists()
