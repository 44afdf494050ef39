"""Compare training runs of p1_train.py, or of train_captioner.py: a markdown table of the settings that
differ and the results, the best run marked as the final result, and a figure of the validation
criterion and training loss. Each run is ranked by what chose its best.pt: validation accuracy for
a ViT, val CIDEr-D for a captioner (val loss when it scored no captions); runs of different criteria
are not compared.

    python scripts/summarize_runs.py runs/l16_sgd runs/l16_adamw --out_md results.md --out_png curves.png

Settings that only say where or how a run was executed (output_dir, device, num_workers, attention
kernel, compile, ...: data/resume.py IGNORED_SETTINGS) are left out of the comparison. A run still
training (its train.lock held) is marked in progress; a run without a finished epoch, or without a
finite value of its criterion, is left out with a warning. A NaN never counts as the best.
"""
import argparse
from pathlib import Path

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main  # first: Ctrl-C during the slow imports below is one line
from data.io import UserError, warn, write_text_atomic
from data.resume import IGNORED_SETTINGS, differing_settings
from data.outputs import check_distinct_outputs, check_output_file
from data.run_files import VAL_ACCURACY, NoFinishedEpoch, read_run


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run folders holding config.json and metrics.csv")
    parser.add_argument("--out_md", default=None, help="also write the markdown table to this file")
    parser.add_argument("--out_png", default=None, help="write the figure of the curves to this file")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    if len(set(map(str, map(Path, args.run_dirs)))) != len(args.run_dirs):
        raise UserError("a run folder is listed twice")
    if args.out_md:
        check_output_file(args.out_md, "--out_md", args.run_dirs)
    if args.out_png:
        from models.figures.plots import check_figure_path
        check_figure_path(args.out_png, "--out_png", args.run_dirs)
    check_distinct_outputs({"--out_md": args.out_md, "--out_png": args.out_png})
    runs = comparable_runs(args.run_dirs)
    table = summary_markdown(runs)
    print(table, end="")
    if args.out_md:
        write_text_atomic(args.out_md, table)
        print(f"wrote {args.out_md}")
    if args.out_png:
        save_curves(runs, args.out_png)
        print(f"wrote {args.out_png}")


def comparable_runs(folders: list) -> list:
    """The runs of `folders` that have a best epoch; the others are left out with a warning each, unless
    none is left, which is one error."""
    runs, left_out = [], []
    for folder in folders:
        try:
            run = read_run(folder)
        except NoFinishedEpoch as err:
            left_out.append(f"{folder}: {err}")
            continue
        if run.best is None:
            left_out.append(f"{folder}: no epoch in its metrics.csv has a finite {run.criterion.column}")
        else:
            runs.append(run)
    if not runs:
        raise UserError(f"no run to compare: {'; '.join(left_out)}")
    for reason in left_out:
        warn(f"left out {reason}")
    kinds = {}
    for run in runs:
        kinds.setdefault(run.criterion, run)
    if len(kinds) > 1:
        (one, first), (other, second) = list(kinds.items())[:2]
        raise UserError(f"{first.path} ({first.kind}) is ranked by {one.label}, {second.path} ({second.kind}) by "
                        f"{other.label}: runs chosen by different criteria cannot be compared; summarize them apart")
    return runs


def shared_settings(configs: list) -> dict:
    differ = set(differing_settings(configs))
    return {k: v for k, v in configs[0].items() if k not in differ and k not in IGNORED_SETTINGS}


def run_names(runs: list) -> list:
    """Folder names, or the paths as given when two folders share a name."""
    names = [run.path.name for run in runs]
    return names if len(set(names)) == len(names) else [str(run.path) for run in runs]


def final_run_index(runs: list) -> int:
    """The run whose best epoch is best by their shared criterion (the first on a tie)."""
    criterion = runs[0].criterion
    best = [run.best[criterion.column] * (1 if criterion.higher else -1) for run in runs]
    return best.index(max(best))


def format_value(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def summary_markdown(runs: list) -> str:
    """A table of the differing settings and the results, the final result marked, and the shared settings."""
    configs = [run.config for run in runs]
    settings = differing_settings(configs)
    final = final_run_index(runs)
    names = run_names(runs)
    criterion = runs[0].criterion
    header = ["run", *settings, "epochs run", "best epoch", f"best {criterion.label}", "final result"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for i, (run, name) in enumerate(zip(runs, names)):
        best = run.best
        mark = "**final**" if i == final else ""
        acc = f"{best[criterion.column]:.{2 if criterion is VAL_ACCURACY else 4}f}"
        epochs = f"{len(run.metrics)}, in progress" if run.in_progress else str(len(run.metrics))
        cells = [f"**{name}**" if i == final else name,
                 *(format_value(run.config.get(k)) for k in settings),
                 epochs, str(best["epoch"]), f"**{acc}**" if i == final else acc, mark]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    best = runs[final].best
    value = (f"validation accuracy {best['val_acc']:.2f}%" if criterion is VAL_ACCURACY
             else f"{criterion.label} {best[criterion.column]:.4f}")
    lines += ["", f"Final result: **{names[final]}**, {value} at epoch "
                  f"{best['epoch']} (checkpoint `{runs[final].path / 'best.pt'}`)."]
    training = [f"{name} ({run.in_progress})" for run, name in zip(runs, names) if run.in_progress]
    if training:
        lines += ["", f"Still training, their numbers may change: {', '.join(training)}."]
    shared = shared_settings(configs)
    if shared:
        lines += ["", "Settings shared by all runs: "
                  + ", ".join(f"{k} {format_value(v)}" for k, v in shared.items()) + "."]
    return "\n".join(lines) + "\n"


def save_curves(runs, path) -> None:
    """Validation accuracy and training loss per epoch, a line per run; the final run drawn thicker."""
    from models.figures.plots import save_figure, subplots

    settings = differing_settings([run.config for run in runs])
    final = final_run_index(runs)
    criterion = runs[0].criterion
    fig, (ax_acc, ax_loss) = subplots(1, 2, figsize=(12, 4.5))
    for i, (run, name) in enumerate(zip(runs, run_names(runs))):
        epochs = [row["epoch"] for row in run.metrics]
        detail = ", ".join(f"{k}={format_value(run.config.get(k))}" for k in settings[:3])
        label = f"{name} ({detail})" if detail else name
        if i == final:
            label += " - final"
        if run.in_progress:
            label += " (in progress)"
        width = 2.6 if i == final else 1.4
        line, = ax_acc.plot(epochs, [row[criterion.column] for row in run.metrics], marker="o", ms=3,
                            lw=width, label=label)
        ax_acc.plot(run.best["epoch"], run.best[criterion.column], marker="*", ms=13, color=line.get_color())
        ax_loss.plot(epochs, [row["train_loss"] for row in run.metrics], marker="o", ms=3, lw=width,
                     color=line.get_color())
    ax_acc.set(xlabel="epoch", ylabel=criterion.label, title=f"{criterion.label} (* = best epoch)")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="Training loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.legend(loc="lower center", ncol=min(len(runs), 2), fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, -0.02 - 0.045 * ((len(runs) + 1) // 2)))
    fig.tight_layout()
    save_figure(fig, path)


if __name__ == "__main__":
    run_main(main)
