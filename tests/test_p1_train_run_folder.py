"""The run folder of p1_train.py: resuming keeps the run's settings, what marks a run, the lock,
metrics rows kept in last.pt, stale temporaries, and the flags checked before anything is written."""
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

import p1_train
from data.io import UserError
from data.resume import resumed_settings
from data.run_files import LOCK_FILE, locked_run_folder
from models.checkpoint import load_checkpoint, model_config, save_checkpoint
from models.vit import random_vit
from tests.support import FAST, ROOT, rows


def train(run_cli, *argv):
    return run_cli(p1_train.main, list(argv))


def test_resume_takes_every_setting_from_the_run(synthetic_data, tmp_path, run_cli):
    data = tmp_path / "data"  # without training images of class 36: the run warns about it
    shutil.copytree(synthetic_data, data)
    for path in (data / "train").glob("36_*.png"):
        path.unlink()
    run = tmp_path / "run"
    code, _, err = train(run_cli, "--data_dir", data, "--output_dir", run, "--epochs", "1", "--patience", "0", *FAST)
    assert code == 0, err
    assert "1 of 37 classes have no training image: 36 (" in err
    config = (run / "config.json").read_bytes()

    # Killed between the last.pt and the metrics.csv writes of the final epoch, with a temporary left.
    (run / "metrics.csv").write_text("epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds\n")
    (run / ".last.pt.x1y2z3.tmp").write_bytes(b"half a checkpoint")
    code, out, err = train(run_cli, "--output_dir", run, "--resume")
    assert code == 0, err
    assert "already complete (1 epochs" in out and "--epochs larger than 1" in out
    assert [r["epoch"] for r in rows(run)] == ["1"]  # the row comes back from last.pt
    assert (run / "config.json").read_bytes() == config  # the defaults did not replace the run's settings
    assert not (run / ".last.pt.x1y2z3.tmp").exists()

    for flags, named in ((["--lr", "0.5"], "--lr"), (["--model", "tiny"], "--model"),
                         (["--epochs", "0"], "--epochs"), (["--augment", "strong"], "--augment")):
        code, _, err = train(run_cli, "--output_dir", run, "--resume", *flags)
        assert code == 2 and err.startswith(f"error: {named}") and len(err.splitlines()) == 1, err

    # The same flags again, the ones that do not change results, and a larger --epochs: trains on.
    code, out, err = train(run_cli, "--output_dir", run, "--resume", "--epochs", "2", "--data_dir", data,
                           "--lr", "3e-3", "--num_workers", "0", "--device", "cpu", "--no_progress")
    assert code == 0, err
    assert [r["epoch"] for r in rows(run)] == ["1", "2"]
    saved = json.loads((run / "config.json").read_text())
    assert saved["epochs"] == 2 and saved["patience"] == 0 and saved["lr"] == 3e-3
    assert load_checkpoint(run / "last.pt")["epoch"] == 2


@pytest.mark.parametrize("name", ["config.json", "metrics.csv", "best.pt", "last.pt"])
def test_any_run_file_marks_a_run(synthetic_data, tmp_path, run_cli, name):
    (tmp_path / name).write_text("from an earlier run")
    code, _, err = train(run_cli, "--data_dir", synthetic_data, "--output_dir", tmp_path, "--epochs", "1", *FAST)
    assert code == 2 and "already holds a run" in err and name in err
    assert (tmp_path / name).read_text() == "from an earlier run"


def test_a_second_training_is_locked_out(synthetic_data, tmp_path, run_cli):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK + UNTIL_STDIN_CLOSES, str(run)], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == "holding\n"
        code, _, err = train(run_cli, "--data_dir", synthetic_data, "--output_dir", run, "--epochs", "1", *FAST)
        text = (run / LOCK_FILE).read_text()
    finally:
        holder.communicate("", timeout=60)
    assert code == 2 and "in use by another training" in err and len(err.splitlines()) == 1
    assert f"process {holder.pid} " in text and text.strip() in err
    assert not run.exists()  # the holder made the folder and wrote nothing: it is gone again
    with locked_run_folder(run):  # released: the next holder gets it
        pass


def test_the_lock_dies_with_its_process_not_with_its_workers(tmp_path):
    run = tmp_path / "run"
    (run).mkdir()
    (run / "config.json").write_text("{}")  # a run: the folder stays after its holder is gone
    # The holder forks a child, as a DataLoader starts its workers, and is killed with -9.
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK + FORK_A_WORKER, str(run)], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout.readline() == "holding\n"
    worker = int(holder.stdout.readline())
    holder.kill()
    holder.wait(timeout=60)
    try:
        os.kill(worker, 0)  # the worker still lives ...
        with locked_run_folder(run):  # ... and the folder is free
            pass
    finally:
        os.kill(worker, signal.SIGKILL)


FORK_A_WORKER = """
    pid = os.fork()
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    print(pid, flush=True)
    time.sleep(60)
"""
HOLD_LOCK = """
import os, sys, time
from data.run_files import locked_run_folder
with locked_run_folder(sys.argv[1]):
    print("holding", flush=True)
"""
UNTIL_STDIN_CLOSES = """
    sys.stdin.read()
"""


def test_resume_without_a_run(tmp_path, run_cli):
    code, _, err = train(run_cli, "--output_dir", tmp_path / "none", "--resume")
    assert code == 2 and "no run to resume" in err
    assert not (tmp_path / "none").exists()


def test_resumed_settings_rules():
    defaults = {"epochs": 10, "patience": 2, "lr": 1e-4, "num_workers": 4, "data_dir": "p1_data", "new_flag": 1}
    saved = {"epochs": 4, "patience": 0, "lr": 3e-3, "num_workers": 2, "data_dir": "old"}
    assert resumed_settings(defaults, saved, {}) == {**defaults, **saved}
    moved = resumed_settings(defaults, saved, {"data_dir": "new", "num_workers": 0, "lr": 3e-3})
    assert moved["data_dir"] == "new" and moved["num_workers"] == 0 and moved["epochs"] == 4
    assert resumed_settings(defaults, saved, {"epochs": 8, "patience": 3})["patience"] == 3
    assert resumed_settings(defaults, saved, {"new_flag": 1})["new_flag"] == 1  # the default of a newer flag
    for given in ({"lr": 0.1}, {"epochs": 3}, {"new_flag": 2}):
        with pytest.raises(UserError, match=f"--{next(iter(given))}"):
            resumed_settings(defaults, saved, given)


BAD_FLAGS = {
    "negative lr": (["--lr", "-0.1"], "--lr"),
    "negative momentum": (["--momentum", "-1"], "--momentum"),
    "negative weight decay": (["--weight_decay", "-0.0001"], "--weight_decay"),
    "nan lr": (["--lr", "nan"], "--lr"),
    "label smoothing 1": (["--label_smoothing", "1"], "--label_smoothing"),
    "label smoothing negative": (["--label_smoothing", "-0.1"], "--label_smoothing"),
    "image size 0": (["--image_size", "0"], "--image_size"),
    "image size not a multiple of the patch": (["--image_size", "30"], "patch size 8"),
    "image size beyond the memory": (["--image_size", "100000"], "a batch of 32 images of 100000x100000 takes at least"),
    "negative workers": (["--num_workers", "-1"], "--num_workers"),
    "huge seed": (["--seed", str(2**70)], "--seed"),
    "negative seed": (["--seed", "-1"], "--seed"),
    "mps device": (["--device", "mps"], "unknown device 'mps'"),
    "unknown device": (["--device", "tpu"], "unknown device"),
    "weights and no_pretrained": (["--weights", "w.pth"], "--no_pretrained"),
}


@pytest.mark.parametrize("case", BAD_FLAGS)
def test_bad_flags_one_line_before_anything_is_written(synthetic_data, tmp_path, run_cli, case):
    flags, mention = BAD_FLAGS[case]
    run = tmp_path / "run"
    code, _, err = train(run_cli, "--data_dir", synthetic_data, "--output_dir", run, "--epochs", "1", *FAST, *flags)
    assert code == 2 and err.startswith("error:") and mention in err and len(err.splitlines()) == 1, err
    assert not run.exists()


def test_a_run_folder_inside_its_data_is_refused(synthetic_data, tmp_path, run_cli):
    code, _, err = train(run_cli, "--data_dir", synthetic_data, "--output_dir", synthetic_data / "runs" / "a",
                         "--epochs", "1", *FAST)
    assert code == 2 and "inside the input folder" in err and len(err.splitlines()) == 1, err
    assert not (synthetic_data / "runs").exists()


def test_output_dir_that_is_a_file_or_cannot_be_made(synthetic_data, tmp_path, run_cli, monkeypatch):
    args = ["--data_dir", synthetic_data, "--epochs", "1", *FAST]
    (tmp_path / "file").write_text("")
    code, _, err = train(run_cli, "--output_dir", tmp_path / "file", *args)
    assert code == 2 and "is a file" in err and len(err.splitlines()) == 1

    def read_only(self, *a, **k):  # tests may run as root, which no folder permission stops
        raise PermissionError(13, "Permission denied", str(self))
    monkeypatch.setattr(p1_train.Path, "mkdir", read_only)
    code, _, err = train(run_cli, "--output_dir", tmp_path / "ro" / "run", *args)
    assert code == 2 and "Permission denied" in err and len(err.splitlines()) == 1


def test_classes_txt_not_utf8_is_one_line(synthetic_data, tmp_path, run_cli):
    data = tmp_path / "data"
    shutil.copytree(synthetic_data, data)
    (data / "classes.txt").write_bytes("caf\xe9\n".encode("latin-1") * 37)
    code, _, err = train(run_cli, "--data_dir", data, "--output_dir", tmp_path / "run", "--epochs", "1", *FAST)
    assert code == 2 and "classes.txt is not UTF-8" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.fixture
def fresh_run(synthetic_data, tmp_path):
    """A run folder holding the config.json p1_train.py writes for the micro model, and no epoch yet."""
    run = tmp_path / "run"
    run.mkdir()
    settings = vars(p1_train.resolve_args(["--data_dir", str(synthetic_data), "--output_dir", str(run), *FAST,
                                           "--epochs", "1"]))
    (run / "config.json").write_text(json.dumps(settings, indent=2))
    return run, settings


CONFIG_EDITS = {  # field: (hand-edited value, what the one line says of it); None deletes the field
    "lr": ("0.1", "must be a finite number, not \"0.1\""),
    "batch_size": (8.5, "must be a whole number, not 8.5"),
    "patience": ("null", "must be a whole number, not null"),
    "class_names": (None, "lacks 'class_names'"),
    "mean": ([0, 0], "must be a list of 3 finite numbers, one per channel, not [0, 0]"),
    "data_dir": ("null", "must be a path or name, not null"),
    "optimizer": ("lamb", "must be one of sgd, adam, adamw, not \"lamb\""),
    "attention": ("flash", "must be one of fast, sdpa, explicit, not \"flash\""),
    "schedule": ("foo", "must be one of constant, cosine, not \"foo\""),
    "augment": ("foo", "must be one of basic, light, strong, not \"foo\""),
    "precision": ("fp16", "must be one of bf16, fp32, not \"fp16\""),
    "clip_grad": (True, "must be a finite number, not true"),
    "epochs": ("10", "must be a whole number, not \"10\""),
    "seed": (-1, "must be in 0..4294967295, not -1"),
}


@pytest.mark.parametrize("field", CONFIG_EDITS)
def test_item_08_a_hand_edited_config_json_is_one_line_naming_the_field(fresh_run, run_cli, field):
    """Item 8: 13 of 25 hand edits of config.json gave tracebacks on --resume and 4 invalid values passed
    silently; config.json is checked by the rules of the flags, before anything is written."""
    run, settings = fresh_run
    value, says = CONFIG_EDITS[field]
    edited = dict(settings)
    if value is None:
        del edited[field]
    else:
        edited[field] = None if value == "null" else value
    (run / "config.json").write_text(json.dumps(edited))
    code, _, err = train(run_cli, "--output_dir", run, "--resume", "--epochs", "2")
    assert code == 2 and len(err.splitlines()) == 1, err
    where = f"{run / 'config.json'}" + ("" if value is None else f": '{field}'")
    assert err.strip() == f"error: {where} {says}"
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]


def test_the_unedited_config_json_passes_the_same_rules(fresh_run):
    run, settings = fresh_run
    assert vars(p1_train.resolve_args(["--output_dir", str(run), "--resume"])) == {**settings, "resume": True}


def test_item_08_another_models_last_pt_on_resume_is_one_line(fresh_run, run_cli, tmp_path):
    """Item 8: another model's last.pt in the run folder gave a size-mismatch traceback on --resume; so
    did weights of another size under this run's config, and a best.pt copied to last.pt lacked the state."""
    run, settings = fresh_run
    state = dict(epoch=1, best_acc=10.0, best_epoch=1, history=[], optimizer={}, scheduler={})
    tiny = random_vit("tiny")
    save_checkpoint(run / "last.pt", tiny, {**settings, **model_config("tiny", 64)}, **state)
    code, _, err = train(run_cli, "--output_dir", run, "--resume")
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"last.pt was written with model = \"tiny\", but {run / 'config.json'} says \"micro\"" in err

    save_checkpoint(run / "last.pt", tiny, settings, **state)  # the run's config over tiny weights
    code, _, err = train(run_cli, "--output_dir", run, "--resume")
    assert code == 2 and len(err.splitlines()) == 1 and "last.pt does not hold a micro model" in err, err

    save_checkpoint(run / "last.pt", random_vit("micro"), settings, epoch=1)  # as best.pt is written
    code, _, err = train(run_cli, "--output_dir", run, "--resume")
    assert code == 2 and len(err.splitlines()) == 1 and "lacks the training state" in err, err
