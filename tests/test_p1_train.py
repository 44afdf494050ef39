"""p1_train.py: learning, early stopping, exact resume, DDP over the whole validation set, bad input."""
import os
import subprocess
import sys

import pytest
import torch
from PIL import Image

import data.datasets
import models.training.loop
import p1_train
from models.checkpoint import load_checkpoint
from tests.support import FAST, ROOT, rows



def test_training_learns_and_writes_the_run_folder(synthetic_data, tmp_path, run_cli):
    run = tmp_path / "run"
    code, out, err = run_cli(p1_train.main, ["--data_dir", synthetic_data, "--output_dir", run, "--epochs", "8",
                                             "--patience", "0", "--schedule", "cosine", "--warmup_epochs", "1"] + FAST)
    assert code == 0, err
    assert {p.name for p in run.iterdir()} >= {"config.json", "metrics.csv", "best.pt", "last.pt"}
    history = rows(run)
    assert list(history[0]) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]
    assert len(history) == 8
    best = max(float(r["val_acc"]) for r in history)
    assert best > 20.0  # chance is 2.7%
    assert load_checkpoint(run / "best.pt")["best_acc"] == pytest.approx(best, abs=1e-3)


def test_early_stopping_stops(small_data, tmp_path, run_cli):
    run = tmp_path / "run"
    # With lr 0 nothing improves after the first epoch: patience 2 ends the run after epoch 3.
    code, out, _ = run_cli(p1_train.main, ["--data_dir", small_data, "--output_dir", run, "--epochs", "10",
                                           "--patience", "2"] + FAST + ["--lr", "0"])
    assert code == 0 and "early stop" in out
    assert [r["epoch"] for r in rows(run)] == ["1", "2", "3"]


@pytest.mark.parametrize("workers", ["0", "2"])  # 2: persistent worker processes across epochs
def test_resume_after_an_interruption_gives_the_same_rows(small_data, tmp_path, run_cli, monkeypatch, workers):
    # small_data's last batch is partial: the resumed epochs must draw the same batches as the whole run's.
    args = ["--data_dir", small_data, "--epochs", "4", "--patience", "0", "--schedule", "cosine"] + FAST
    args += ["--num_workers", workers]
    code, _, err = run_cli(p1_train.main, args + ["--output_dir", tmp_path / "whole"])
    assert code == 0, err

    real_save, saves = models.training.loop.write_checkpoint, []

    def save_then_die(path, *a, **k):  # killed right after the second epoch's last.pt is on disk
        real_save(path, *a, **k)
        saves.append(path)
        if path.name == "last.pt" and len([p for p in saves if p.name == "last.pt"]) == 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(models.training.loop, "write_checkpoint", save_then_die)
    code, _, err = run_cli(p1_train.main, args + ["--output_dir", tmp_path / "cut"])
    assert code == 130 and "interrupted" in err
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 2
    monkeypatch.setattr(models.training.loop, "write_checkpoint", real_save)

    code, _, err = run_cli(p1_train.main, ["--output_dir", tmp_path / "cut", "--resume", "--epochs", "4",
                                           "--patience", "0", "--device", "cpu", "--num_workers", workers,
                                           "--no_progress"])
    assert code == 0, err
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in rows(tmp_path / "cut")]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in rows(tmp_path / "whole")]


def test_a_run_folder_is_never_overwritten(synthetic_data, tmp_path, run_cli):
    args = ["--data_dir", synthetic_data, "--output_dir", tmp_path, "--epochs", "1"] + FAST
    assert run_cli(p1_train.main, args)[0] == 0
    code, _, err = run_cli(p1_train.main, args)
    assert code == 2 and "already holds a run" in err


def test_killed_while_writing_a_checkpoint_leaves_the_previous_one(synthetic_data, tmp_path, run_cli, monkeypatch):
    args = ["--data_dir", synthetic_data, "--output_dir", tmp_path, "--epochs", "2", "--patience", "0"] + FAST
    calls = []
    real_save = torch.save

    def die_on_second_epoch(obj, f, *a, **k):
        calls.append(f)
        if obj.get("epoch") == 2:
            with open(f, "wb") as half:
                half.write(b"PK\x03\x04 half a checkpoint")
            raise KeyboardInterrupt
        real_save(obj, f, *a, **k)
    monkeypatch.setattr(torch, "save", die_on_second_epoch)
    code, _, _ = run_cli(p1_train.main, args)
    assert code == 130
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_ddp_two_processes_count_every_val_image_once(synthetic_data, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "p1_train.py", "--data_dir", str(synthetic_data), "--output_dir", str(tmp_path / "ddp"),
           "--epochs", "2", "--patience", "0"] + FAST
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "x2" in result.stdout
    assert result.stdout.count("(37 images)") == 2  # 37 val images over 2 processes: none padded, none lost
    assert len(rows(tmp_path / "ddp")) == 2


@pytest.mark.parametrize("problem,expected", [
    ("missing", "folder not found"),
    ("empty", "no .jpg/.jpeg/.png images"),
    ("no_label", "cannot read a label from"),
    ("out_of_range", "label 40 is outside 0..36"),
    ("corrupt", "cannot read image"),
])
def test_bad_data_gives_one_clear_line(tmp_path, run_cli, problem, expected):
    data = tmp_path / "data"
    for split in ("train", "val"):
        (data / split).mkdir(parents=True)
        Image.new("RGB", (32, 32)).save(data / split / "0_1.jpg")
    if problem == "missing":
        data = tmp_path / "nowhere"
    elif problem == "empty":
        (data / "train" / "0_1.jpg").unlink()
    elif problem == "no_label":
        Image.new("RGB", (32, 32)).save(data / "train" / "dog.jpg")
    elif problem == "out_of_range":
        Image.new("RGB", (32, 32)).save(data / "train" / "40_2.jpg")
    elif problem == "corrupt":
        (data / "train" / "3_7.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    code, _, err = run_cli(p1_train.main, ["--data_dir", data, "--output_dir", tmp_path / "run", "--epochs", "1"] + FAST)
    assert code == 2 and expected in err
    assert len(err.strip().splitlines()) == 1, err
    if problem == "corrupt":
        assert "3_7.jpg" in err
        code, _, err = run_cli(p1_train.main, ["--data_dir", data, "--output_dir", tmp_path / "run", "--epochs", "1",
                                               "--skip_bad_images"] + FAST)
        assert code == 0 and "warning" in err and "3_7.jpg" in err


def test_non_image_files_are_skipped_with_a_warning(synthetic_data, tmp_path, run_cli):
    import shutil
    data = tmp_path / "data"
    shutil.copytree(synthetic_data, data)
    (data / "train" / "README.txt").write_text("not an image")
    code, _, err = run_cli(p1_train.main, ["--data_dir", data, "--output_dir", tmp_path / "run", "--epochs", "1"] + FAST)
    assert code == 0 and "README.txt" in err


def test_cuda_without_a_gpu_and_unreachable_weights(synthetic_data, tmp_path, run_cli, monkeypatch):
    if not torch.cuda.is_available():
        code, _, err = run_cli(p1_train.main, ["--data_dir", synthetic_data, "--output_dir", tmp_path / "a",
                                               "--model", "micro", "--device", "cuda"])
        assert code == 2 and "no CUDA GPU" in err

    def offline(*args, **kwargs):
        raise OSError("network unreachable")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    code, _, err = run_cli(p1_train.main, ["--data_dir", synthetic_data, "--output_dir", tmp_path / "b",
                                           "--model", "B_32", "--image_size", "32", "--device", "cpu", "--no_progress"])
    assert code == 2 and "B_32.pth" in err and "--weights" in err


def test_cache_images_trains_exactly_like_the_files_and_refuses_what_does_not_fit(small_data, tmp_path, run_cli,
                                                                                 monkeypatch):
    args = ["--data_dir", small_data, "--epochs", "2", "--patience", "0"] + FAST + ["--num_workers", "2"]
    results = []
    for cache in ([], ["--cache_images"]):
        code, _, err = run_cli(p1_train.main, args + ["--output_dir", tmp_path / f"run{len(cache)}"] + cache)
        assert code == 0, err
        results.append([{k: v for k, v in r.items() if k != "seconds"} for r in rows(tmp_path / f"run{len(cache)}")])
    assert results[0] == results[1]
    monkeypatch.setattr(data.datasets, "available_memory", lambda: (10**5, "MemAvailable"))
    code, _, err = run_cli(p1_train.main, args + ["--output_dir", tmp_path / "small", "--cache_images"])
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--cache_images needs 0.000341 GB for the 111 images" in err  # 111 x 32 x 32 x 3 bytes
    assert "only 0.0001 GB is available (MemAvailable)" in err
