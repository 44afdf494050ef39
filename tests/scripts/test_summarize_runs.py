"""scripts/summarize_runs.py, data/run_files.py and data/resume.py on two real short p1_train.py runs of the 'micro' model."""
import csv
from pathlib import Path

import pytest

from data.entry import run_main
from data.resume import differing_settings
from data.run_files import Run
from data.synthetic import make_synthetic_split
import summarize_runs
from summarize_runs import final_run_index, summary_markdown

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
