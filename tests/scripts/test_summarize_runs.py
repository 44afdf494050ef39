"""scripts/summarize_runs.py, data/run_files.py and data/resume.py on two real short p1_train.py runs of the 'micro' model."""
import csv
import json
from pathlib import Path

import pytest

from data.entry import run_main
from data.resume import differing_settings
from data.run_files import Run
from data.synthetic import make_synthetic_split
import summarize_runs
from summarize_runs import final_run_index, summary_markdown
from tests.support import lock_held_elsewhere

# Two runs that differ in optimizer and learning rate only.
RUN_SETTINGS = {"adamw_3e-3": ["--optimizer", "adamw", "--lr", "3e-3"],
                "sgd_1e-2": ["--optimizer", "sgd", "--lr", "1e-2"]}




@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import p1_train

    tmp = tmp_path_factory.mktemp("runs")
    data = make_synthetic_split(tmp / "data", seed=0, size=32, train_per_class=1, val_per_class=1)
    folders = []
    for name, flags in RUN_SETTINGS.items():
        p1_train.main(["--data_dir", str(data), "--output_dir", str(tmp / name), "--model", "micro",
                       "--no_pretrained", "--epochs", "2", "--patience", "0", "--batch_size", "32",
                       "--num_workers", "0", "--no_progress", *flags])
        folders.append(tmp / name)
    return folders


def read_metrics(folder):
    with open(folder / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def table_rows(markdown):
    """The table's data rows as {column: cell} dicts, bold marks removed."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip().strip("*") for c in line.strip("|").split("|")))) for line in lines[2:]]


def test_table_numbers_equal_metrics_csv_and_figure_exists(runs, tmp_path, capsys):
    out_md, out_png = tmp_path / "summary.md", tmp_path / "curves.png"

    run_main(lambda: summarize_runs.main([*map(str, runs), "--out_md", str(out_md), "--out_png", str(out_png)]))

    markdown = out_md.read_text()
    assert markdown in capsys.readouterr().out
    rows = table_rows(markdown)
    assert [row["run"] for row in rows] == [folder.name for folder in runs]
    best_accs = []
    for row, folder in zip(rows, runs):
        metrics = read_metrics(folder)
        accs = [float(m["val_acc"]) for m in metrics]
        best = accs.index(max(accs))
        best_accs.append(max(accs))
        assert row["epochs run"] == str(len(metrics)) == "2"
        assert row["best epoch"] == metrics[best]["epoch"]
        assert row["best val acc (%)"] == f"{max(accs):.2f}"
    # the settings columns: exactly what the two runs were given differently
    assert list(rows[0])[1:3] == ["optimizer", "lr"]
    assert [(row["optimizer"], row["lr"]) for row in rows] == [("adamw", "0.003"), ("sgd", "0.01")]
    final = best_accs.index(max(best_accs))
    assert [row["final result"] for row in rows] == ["final" if i == final else "" for i in range(2)]
    assert f"Final result: **{runs[final].name}**" in markdown
    assert out_png.read_bytes().startswith(b"\x89PNG") and out_png.stat().st_size > 10_000


def make_run(name, val_accs, **config):
    metrics = [{"epoch": i + 1, "train_loss": 1.0, "val_acc": acc} for i, acc in enumerate(val_accs)]
    return Run(Path(name), {"model": "micro", "output_dir": name, **config}, metrics)


def test_ignored_and_missing_settings():
    configs = [{"lr": 0.1, "output_dir": "a", "device": "cpu", "seed": 0},
               {"lr": 0.1, "output_dir": "b", "device": "cuda", "seed": 0, "schedule": "cosine"}]
    assert differing_settings(configs) == ["schedule"]


def test_best_epoch_first_on_tie_and_final_run_first_on_tie():
    a, b = make_run("a", [50.0, 70.0, 70.0]), make_run("b", [70.0, 60.0])
    assert a.best["epoch"] == 2
    assert final_run_index([a, b]) == 0
    rows = table_rows(summary_markdown([a, b]))
    assert [row["final result"] for row in rows] == ["final", ""]


@pytest.mark.parametrize("case", ["missing folder", "no metrics", "no config", "listed twice", "short row",
                                  "long row", "figure as text"])
def test_bad_run_folder_one_line(runs, tmp_path, capsys, case):
    folder = tmp_path / "run"
    folder.mkdir()
    if case == "no metrics":
        (folder / "config.json").write_text("{}")
    if case == "no config":
        (folder / "metrics.csv").write_text("epoch,train_loss,val_acc\n1,2.0,50\n")
    if case in ("short row", "long row"):
        (folder / "config.json").write_text("{}")
        row = "2,1.5" if case == "short row" else "2,1.5,60,7"
        (folder / "metrics.csv").write_text(f"epoch,train_loss,val_acc\n1,2.0,50\n{row}\n")
    argv = {"missing folder": [str(tmp_path / "nope")], "no metrics": [str(folder)],
            "no config": [str(folder)], "listed twice": [str(runs[0]), str(runs[0])],
            "short row": [str(folder)], "long row": [str(folder)],
            "figure as text": [str(runs[0]), "--out_png", str(tmp_path / "curves.txt")]}[case]

    with pytest.raises(SystemExit) as exit:
        run_main(lambda: summarize_runs.main(argv))

    out, err = capsys.readouterr()
    assert exit.value.code == 2 and err.startswith("error:") and err.count("\n") == 1
    if case in ("short row", "long row"):
        assert "line 3 has" in err
    if case == "figure as text":
        assert "--out_png" in err and out == ""  # refused before the table is printed


def write_run(folder, val_accs, **config):
    """A run folder as p1_train.py leaves it: config.json and metrics.csv (its header only when no epoch ended)."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model": "micro", "output_dir": str(folder), **config}))
    rows = "".join(f"{i + 1},1.0,{acc}\n" for i, acc in enumerate(val_accs))
    (folder / "metrics.csv").write_text("epoch,train_loss,val_acc\n" + rows)
    return folder


def test_a_run_still_training_is_marked_in_progress(tmp_path, run_cli):
    """A run whose train.lock is held was marked final with no hint that it still trains."""
    done = write_run(tmp_path / "done", [40.0, 50.0], lr=0.1)
    training = write_run(tmp_path / "training", [60.0], lr=0.2)
    (done / "train.lock").write_text("p1_train.py, process 1 on host, since earlier\n")  # left unlocked
    with lock_held_elsewhere(training / "train.lock", "p1_train.py"):
        code, out, err = run_cli(summarize_runs.main, [done, training])
    assert code == 0, err
    rows = table_rows(out)
    assert [(row["run"], row["epochs run"], row["final result"]) for row in rows] == [
        ("done", "2", ""), ("training", "1, in progress", "final")]
    assert "Still training, their numbers may change: training (p1_train.py, process" in out


def test_a_run_before_its_first_epoch_is_left_out_with_a_warning(tmp_path, run_cli):
    """A run that had not finished its first epoch (metrics.csv a header only, or none yet) made
    the whole comparison fail; so did a run whose every val_acc is NaN."""
    runs = [write_run(tmp_path / "done", [40.0]), write_run(tmp_path / "starting", []),
            write_run(tmp_path / "nan", ["nan"])]
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "config.json").write_text("{}")
    code, out, err = run_cli(summarize_runs.main, [*runs, tmp_path / "new"])
    assert code == 0, err
    assert [row["run"] for row in table_rows(out)] == ["done"]
    assert err.count("warning: left out") == 3 and len(err.strip().splitlines()) == 3, err
    assert "holds no epochs yet" in err and "no epoch in its metrics.csv has a finite val_acc" in err
    code, _, err = run_cli(summarize_runs.main, [runs[1]])
    assert code == 2 and err.startswith("error: no run to compare:") and len(err.strip().splitlines()) == 1


def test_a_nan_accuracy_never_wins():
    """A NaN val_acc row won "final" (max() keeps a NaN met first)."""
    nan_first, steady = make_run("a", [float("nan"), 40.0]), make_run("b", [50.0])
    assert nan_first.best["epoch"] == 2
    assert final_run_index([nan_first, steady]) == 1
    assert [row["final result"] for row in table_rows(summary_markdown([nan_first, steady]))] == ["", "final"]


def write_captioner_run(folder, rows, score_images=None):
    """A run folder as train_captioner.py leaves it: `rows` of (val_acc, val_cider) per epoch."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"config": "tiny", "catr": {"hidden_dim": 32},
                                                    "score_images": score_images, "output_dir": str(folder)}))
    lines = "".join(f"{i + 1},1.0,{1.0 - i / 10},{acc},{'' if cider is None else cider}\n"
                    for i, (acc, cider) in enumerate(rows))
    (folder / "metrics.csv").write_text("epoch,train_loss,val_loss,val_acc,val_cider\n" + lines)
    return folder


def test_captioner_runs_are_ranked_by_the_criterion_that_chose_their_best_checkpoint(tmp_path, run_cli):
    # Next-token accuracy peaks at epoch 2, CIDEr-D (what chose best.pt) at epoch 1.
    a = write_captioner_run(tmp_path / "a", [(40.0, 0.9), (45.0, 0.5)])
    b = write_captioner_run(tmp_path / "b", [(50.0, 0.7), (55.0, 0.6)])
    code, stdout, stderr = run_cli(summarize_runs.main, [a, b])
    assert code == 0, stderr
    rows = table_rows(stdout)
    assert [(row["best epoch"], row["best val CIDEr-D"], row["final result"]) for row in rows] == [
        ("1", "0.9000", "final"), ("1", "0.7000", "")]
    unscored = write_captioner_run(tmp_path / "unscored", [(40.0, None), (45.0, None)], score_images=0)
    code, stdout, stderr = run_cli(summarize_runs.main, [unscored])
    assert code == 0 and table_rows(stdout)[0]["best val loss"] == "0.9000", stderr  # the lower loss


def test_runs_of_different_criteria_are_not_compared(tmp_path, run_cli):
    vit = write_run(tmp_path / "vit", [50.0, 60.0])
    captioner = write_captioner_run(tmp_path / "captioner", [(70.0, 0.9)])
    code, stdout, stderr = run_cli(summarize_runs.main, [vit, captioner])
    assert code == 2 and "cannot be compared" in stderr and "final" not in stdout, stderr


def test_two_outputs_naming_one_file_are_refused(tmp_path, run_cli):
    vit = write_run(tmp_path / "vit", [50.0, 60.0])
    code, _, stderr = run_cli(summarize_runs.main, [vit, "--out_md", tmp_path / "x.png", "--out_png", tmp_path / "x.png"])
    assert code == 2 and "--out_md and --out_png name the same file" in stderr and not (tmp_path / "x.png").exists()
