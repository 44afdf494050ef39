"""Compare training runs of p1_train.py: a markdown table of the settings that differ and the results,
the best run marked as the final result, and a figure of validation accuracy and training loss.

    python scripts/summarize_runs.py runs/l16_sgd runs/l16_adamw --out_md results.md --out_png curves.png

Settings that only say where or how a run was executed (output_dir, device, num_workers, attention
kernel, compile, ...: data/runs.py IGNORED_SETTINGS) are left out of the comparison.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from data.io import UserError, run_main, write_text_atomic  # noqa: E402
from data.runs import differing_settings, final_run_index, format_value, read_run, run_names, summary_markdown  # noqa: E402


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
    if args.out_png:
        from models.plots import check_figure_path
        check_figure_path(args.out_png, "--out_png")
    runs = [read_run(d) for d in args.run_dirs]
    table = summary_markdown(runs)
    print(table, end="")
    if args.out_md:
        write_text_atomic(args.out_md, table)
        print(f"wrote {args.out_md}")
    if args.out_png:
        save_curves(runs, args.out_png)
        print(f"wrote {args.out_png}")


def save_curves(runs, path) -> None:
    """Validation accuracy and training loss per epoch, a line per run; the final run drawn thicker."""
    import matplotlib.pyplot as plt
    from models.plots import save_figure

    settings = differing_settings([run.config for run in runs])
    final = final_run_index(runs)
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, (run, name) in enumerate(zip(runs, run_names(runs))):
        epochs = [row["epoch"] for row in run.metrics]
        detail = ", ".join(f"{k}={format_value(run.config.get(k))}" for k in settings[:3])
        label = f"{name} ({detail})" if detail else name
        if i == final:
            label += " - final"
        width = 2.6 if i == final else 1.4
        line, = ax_acc.plot(epochs, [row["val_acc"] for row in run.metrics], marker="o", ms=3,
                            lw=width, label=label)
        ax_acc.plot(run.best["epoch"], run.best["val_acc"], marker="*", ms=13, color=line.get_color())
        ax_loss.plot(epochs, [row["train_loss"] for row in run.metrics], marker="o", ms=3, lw=width,
                     color=line.get_color())
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy (%)", title="Validation accuracy (* = best epoch)")
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
