"""models.training.loop.fit on a toy task: best.pt and last.pt, checkpoints kept every N epochs, early
stop, a resume after a kill equal to an uninterrupted run, and two gloo processes under DDP."""
import argparse
import csv
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

import models.training.loop
from data.checkpoints import load_checkpoint_file
from models.training.engine import classification_step
from models.training.loop import Task, fit, patience_exhausted
from models.training.session import training_run

FORMAT = "toy-checkpoint"
FEATURES, CLASSES = 6, 3


def toy_sets(count=48, seed=0):
    """Separable points: the label is the largest of the first CLASSES features."""
    generator = torch.Generator().manual_seed(seed)
    points = torch.randn(count, FEATURES, generator=generator)
    return torch.utils.data.TensorDataset(points, points[:, :CLASSES].argmax(1))


def toy_args(out, **changes) -> argparse.Namespace:
    settings = dict(output_dir=str(out), epochs=4, batch_size=8, grad_accum=1, schedule="cosine", warmup_epochs=0.5,
                    save_every=0, patience=0, seed=3, device="cpu", precision="fp32", num_workers=0, resume=False,
                    progress=False, lr=0.05, weight_decay=0.0, clip_grad=1.0)
    return argparse.Namespace(**{**settings, **changes})


def toy_task(args, run, val_scores=None) -> Task:
    """A linear classifier with dropout (each epoch's seed matters), its val accuracy picking best.pt;
    `val_scores` (one per epoch) replace that accuracy to steer the best epoch."""
    torch.manual_seed(args.seed)
    model = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(FEATURES, CLASSES))
    if run.resumed is not None:
        model.load_state_dict(run.resumed["model"])
    model.to(run.device)
    score = (lambda row: val_scores[row["epoch"] - 1]) if val_scores else (lambda row: row["val_acc"])
    return Task(model, toy_sets(), toy_sets(20, seed=1), dict(vars(args)), FORMAT,
                train_step=lambda trained, amp: classification_step(trained, run.device, amp),
                val_step=lambda plain, amp: classification_step(plain, run.device, amp),
                score=score, criterion="val score", shown=lambda value: f"{value:.2f}", name="toy",
                describe="48 points", epoch_line=lambda row, improved, seconds: f"epoch {row['epoch']}",
                optimizer="sgd", momentum=0.9)


def train(args, val_scores=None):
    with training_run(args, lambda path: load_checkpoint_file(path, FORMAT, "the toy trainer")) as run:
        fit(args, toy_task(args, run, val_scores), run)


def rows(out) -> list:
    with open(out / "metrics.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def test_best_last_and_every_nth_epoch_are_written(tmp_path, capsys):
    out = tmp_path / "run"
    train(toy_args(out, epochs=5, save_every=2), val_scores=[1, 3, 2, 2, 2])
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "config.json", "epoch_002.pt", "epoch_004.pt",
                                                     "last.pt", "metrics.csv", "train.lock"]
    best, last = (load_checkpoint_file(out / name, FORMAT, "") for name in ("best.pt", "last.pt"))
    assert (best["epoch"], best["best_epoch"], last["epoch"], last["best_score"]) == (2, 2, 5, 3)
    assert "optimizer" in last and "optimizer" not in best
    kept = load_checkpoint_file(out / "epoch_004.pt", FORMAT, "")
    assert kept["epoch"] == 4 and "optimizer" not in kept and len(kept["history"]) == 4
    assert [row["epoch"] for row in rows(out)] == ["1", "2", "3", "4", "5"]
    assert "best val score 3.00 at epoch 2" in capsys.readouterr().out


def test_early_stop_after_patience_epochs_without_a_better_score(tmp_path, capsys):
    out = tmp_path / "run"
    train(toy_args(out, epochs=8, patience=2), val_scores=[1, 2, 2, 1.5, 3, 3, 3, 3])
    assert len(rows(out)) == 4  # epochs 3 and 4 brought nothing better than epoch 2
    assert "early stop: no better val score for 2 epochs" in capsys.readouterr().out
    train(toy_args(out, epochs=8, patience=2, resume=True))  # a stopped run has nothing left to train
    assert "already complete (4 epochs, best val score 2.00)" in capsys.readouterr().out
    assert patience_exhausted(4, 2, 2) and not patience_exhausted(3, 2, 2) and not patience_exhausted(9, 1, 0)


def test_a_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    train(toy_args(tmp_path / "whole"))
    real, written = models.training.loop.write_checkpoint, []

    def write_then_die(path, *args, **kwargs):  # killed right after the second epoch's last.pt
        real(path, *args, **kwargs)
        written.append(path.name)
        if written.count("last.pt") == 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(models.training.loop, "write_checkpoint", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(toy_args(tmp_path / "cut"))
    monkeypatch.setattr(models.training.loop, "write_checkpoint", real)
    assert load_checkpoint_file(tmp_path / "cut" / "last.pt", FORMAT, "")["epoch"] == 2
    train(toy_args(tmp_path / "cut", resume=True))
    assert rows(tmp_path / "cut") == rows(tmp_path / "whole")
    whole, cut = (load_checkpoint_file(tmp_path / name / "last.pt", FORMAT, "") for name in ("whole", "cut"))
    assert all(torch.equal(whole["model"][key], cut["model"][key]) for key in whole["model"])


def _ddp_process(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE="2", LOCAL_WORLD_SIZE="2")
    torch.set_num_threads(1)
    train(toy_args(out, epochs=2))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_train_one_model_over_the_whole_val_set(tmp_path):
    out = tmp_path / "ddp"
    mp.spawn(_ddp_process, args=(free_port(), str(out)), nprocs=2)
    last = load_checkpoint_file(out / "last.pt", FORMAT, "")
    assert last["epoch"] == 2 and [row["val_seen"] for row in last["history"]] == [20, 20]
    assert len(rows(out)) == 2
